"""papers.lora_vs_full.packing: instruction-finetuning examples packed into fixed-length sequences (the
authors' code IFT setting, llm-foundry's packing_ratio), and the end-of-run benchmark scores of 02."""
import pytest
import torch

from papers.lora_vs_full import scales
from papers.lora_vs_full import sweep as lvf
from papers.lora_vs_full.base import export_hf
from papers.lora_vs_full.finetune import build_train_data, finetune_main, read_run
from papers.lora_vs_full.packing import (
    PackedPairBatches,
    pack_epoch,
    pack_group,
    packed_rows,
    packed_steps_per_epoch,
    split_examples,
)
from papers.lora_vs_full.tasks import ConditionSpec, encode_pairs, task_material
from shared.data.generated import arithmetic
from shared.data.tokenizer import train_bpe
from shared.models.gpt import GPT, GPTConfig
from shared.train import TrainConfig


@pytest.fixture(scope="module")
def tokenizer():
    texts = [arithmetic.to_text(r) for r in arithmetic.generate_arithmetic(150, seed=5)]
    return train_bpe(texts, vocab_size=300, show_progress=False)


@pytest.fixture(scope="module")
def pairs():
    """Pairs of very different lengths: short answers and long worked solutions."""
    rows = arithmetic.generate_arithmetic(36, seed=3)
    return [(arithmetic.format_prompt(r["question"]), " " + (r["answer"] if i % 3 else r["answer"].split("\n")[-1]))
            for i, r in enumerate(rows)]


def _response_targets(example):
    """The target tokens the example trains on, in order."""
    return example.tokens[1:][example.loss_mask].tolist()


def test_split_examples_undoes_the_padding(tokenizer, pairs):
    data = encode_pairs(tokenizer, pairs, max_len=240)
    examples = split_examples(data)
    assert len(examples) == len(data["input_ids"])
    for i, ex in enumerate(examples):
        assert len(ex.loss_mask) == len(ex.tokens) - 1
        assert _response_targets(ex) == data["targets"][i][data["loss_mask"][i]].tolist()
        assert ex.tokens[-1] == tokenizer.eos_token_id                       # nothing cut at 240 tokens
        assert torch.equal(ex.tokens[:-1], data["input_ids"][i, :len(ex.tokens) - 1].long())


def test_first_fit_decreasing_gives_the_group_its_sequences():
    # longest first into the first sequence with room; the last example opens the third sequence
    full, left = pack_group([0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 1], n_bins=3, capacity=8)
    assert full == [[0, 2], [1, 3, 4], [5]] and left == []
    # what does not fit is left over, and the next group packs it first
    full, left = pack_group([0, 1, 2], [10, 10, 10], n_bins=2, capacity=12)
    assert full == [[0], [1]] and left == [[2]]
    full, left = pack_group([3, 4], [10, 10, 10, 1, 1], n_bins=2, capacity=12, carried=left)
    assert sorted(map(sorted, full)) == [[2, 3], [4]] and left == []
    with pytest.raises(ValueError, match="exceeds"):
        pack_group([0], [13], n_bins=1, capacity=12)


def test_packing_keeps_every_response_label_and_masks_prompts_and_padding(tokenizer, pairs):
    seq_len = 720                               # room for 3 of these examples (76 to 235 tokens)
    examples = split_examples(encode_pairs(tokenizer, pairs, max_len=seq_len))
    lengths = [len(e.tokens) for e in examples]
    bins = pack_epoch(lengths, list(range(len(examples))), ratio=2.0, group=2, capacity=seq_len + 1)
    packed = [i for b in bins for i in b]
    assert sorted(packed) == list(range(len(examples)))             # every example once, none split
    assert len(bins) == len(examples) // 2                           # 2 examples per sequence on average
    assert max(len(b) for b in bins) > 2 > min(len(b) for b in bins)   # first-fit: unequal sequences
    rows = packed_rows(examples, bins, seq_len, pad_id=0)
    assert rows["input_ids"].shape == rows["targets"].shape == rows["loss_mask"].shape == (len(bins), seq_len)
    assert int(rows["loss_mask"].sum()) == sum(int(e.loss_mask.sum()) for e in examples)
    for r, members in enumerate(bins):
        assert sum(lengths[i] for i in members) <= seq_len + 1
        start = 0
        for i in members:                       # each example's tokens in place, its labels where they were
            ex = examples[i]
            n = len(ex.tokens)
            assert torch.equal(rows["input_ids"][r, start:start + n - 1], ex.tokens[:-1])
            assert torch.equal(rows["loss_mask"][r, start:start + n - 1], ex.loss_mask)
            assert rows["targets"][r, start:start + n - 1][ex.loss_mask].tolist() == _response_targets(ex)
            if start + n - 1 < seq_len:         # the target crossing into the next example (or padding)
                assert not rows["loss_mask"][r, start + n - 1]
            start += n
        assert not rows["loss_mask"][r, start - 1:].any()           # padding never a target


def test_packed_batches_are_deterministic_resumable_and_rank_sharded(tokenizer, pairs):
    data = encode_pairs(tokenizer, pairs, max_len=1200)      # room for any 5 of them: no leftovers

    def stream(**kw):
        return PackedPairBatches(data, 3.0, 2, 1200, kw.pop("micro", 2), seed=kw.pop("seed", 0), **kw)
    a, b = stream(), stream()
    draws = [next(a) for _ in range(12)]                 # 12 sequences an epoch: 6 draws, two epochs
    for d in draws:
        assert all(torch.equal(d[k], v) for k, v in next(b).items())
    assert a.epoch == 1 and a.bins(0) != a.bins(1)       # reshuffled and repacked every epoch
    assert stream(seed=1).bins(0) != a.bins(0)
    resumed = stream()
    resumed.load_state_dict(a.state_dict())
    nxt = next(a)
    assert all(torch.equal(nxt[k], v) for k, v in next(resumed).items())
    ranks = [stream(micro=1, rank=r, world_size=2) for r in (0, 1)]
    whole = stream(micro=2)
    for _ in range(3):
        halves = [next(s) for s in ranks]
        assert torch.equal(torch.cat([h["input_ids"] for h in halves]), next(whole)["input_ids"])


def test_the_full_preset_packs_code_ift_as_the_authors():
    """[T]: 193 batches of 192 sequences per epoch of Magicoder's 111,183 rows (packing ratio 3, a group per
    device batch of 6); math IFT and the smaller scales stay unpacked."""
    full = scales.NOTEBOOKS["02_learning_forgetting"].build("full")
    task = lvf.condition_task(full.to_dict(), "code-ift", "/data")
    csweep = lvf.condition_sweep(full.to_dict(), "code-ift")
    assert csweep["train"]["global_batch_size"] == 192
    steps = packed_steps_per_epoch(111_183, task["packing_ratio"], task["packing_group"], 192)
    assert steps == 193 == full.durations_by_condition["code-ift"][0]
    assert lvf.condition_task(full.to_dict(), "math-ift", "/data").get("packing_ratio") is None
    for scale in ("smoke", "small"):
        sweep = scales.NOTEBOOKS["02_learning_forgetting"].build(scale).to_dict()
        assert all("packing_ratio" not in lvf.condition_task(sweep, c) for c in sweep["conditions"])


def test_packing_is_off_by_default_and_only_for_ift():
    spec = ConditionSpec("math", "ift")
    assert "packing_ratio" not in spec.to_dict()          # specs of unpacked runs are as before
    packed = ConditionSpec("math", "ift", packing_ratio=2.0, packing_group=3)
    assert ConditionSpec.from_dict(packed.to_dict()) == packed
    with pytest.raises(ValueError, match="regime 'ift'"):
        ConditionSpec("math", "cpt", packing_ratio=2.0)


def test_a_tiny_finetune_runs_packed(tmp_path, tokenizer):
    torch.manual_seed(0)
    base = export_hf(GPT(GPTConfig(vocab_size=len(tokenizer), n_layer=1, n_head=2, d_model=32, d_ff=64,
                                   max_seq_len=256)), tokenizer, tmp_path / "base")
    task = ConditionSpec("math", "ift", n_train=24, n_test=4, max_len=256, source_corpora={"functions": 20},
                         source_windows=4, packing_ratio=2.0, packing_group=2)
    cfg = TrainConfig(max_steps=3, global_batch_size=4, micro_batch_size=2)
    data = build_train_data(task, tokenizer, task_material(task), cfg, 0, 1)
    batch = next(data)
    assert isinstance(data, PackedPairBatches) and batch["input_ids"].shape == (2, 256)
    assert batch["loss_mask"].sum() > 0
    train = dict(max_steps=3, lr=1e-3, optimizer="lionw", global_batch_size=4, micro_batch_size=2,
                 schedule="constant", progress_bar=False)
    spec = lvf.make_spec(base, task.to_dict(), dict(method="lora", rank=2), train, eval_steps=[], max_new_tokens=8)
    finetune_main(spec.to_dict(), str(tmp_path / "run"))
    res = read_run(tmp_path / "run")
    assert [r["step"] for r in res.evals][-1] == 3 and res.train and all(r["loss"] == r["loss"] for r in res.train)
    frame = lvf.results_frame(tmp_path, ["run"], base_metrics=False)
    assert frame["samples"].max() == 3 * 4 * 2                  # examples: steps x sequences x ratio


@pytest.mark.slow
def test_final_models_are_scored_on_benchmark_fixtures(tmp_path, tokenizer):
    """02's end-of-run check: fixture files in the public formats, scored by the harness path of the full
    preset (finetune.BenchmarkEval) on transformers folders."""
    pytest.importorskip("lm_eval")
    torch.manual_seed(0)
    base = export_hf(GPT(GPTConfig(vocab_size=len(tokenizer), n_layer=1, n_head=2, d_model=32, d_ff=64,
                                   max_seq_len=256)), tokenizer, tmp_path / "base")
    check = scales.NOTEBOOKS["02_learning_forgetting"].build("smoke").final_benchmarks.to_dict()
    frame = lvf.final_benchmark_scores({**check, "fixture_rows": 2}, {"base": base, "again": base},
                                       tmp_path / "fixtures", batch_size=4)
    assert (tmp_path / "fixtures" / "hellaswag" / "validation.jsonl").exists()
    assert list(frame["model"]) == ["base", "again"]
    assert {"hellaswag_acc_norm", "arc_challenge_acc_norm", "winogrande_acc", "benchmarks_mean"} <= set(frame)
    assert frame["benchmarks_mean"].nunique() == 1 and 0 <= frame["benchmarks_mean"][0] <= 1
    with pytest.raises(ValueError, match="give data_dir"):
        lvf.final_benchmark_scores({**check, "fixture_rows": 0}, {"base": base}, tmp_path / "x")
