"""papers.lora_vs_full (finetune, tasks, sweep, base): LoRA (peft) and full finetuning of a tiny
Llama-shaped model, the weight-change spectra, and the sweep planning (tiny shapes, a few seconds)."""
import json
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from papers.lora_vs_full import scales
from papers.lora_vs_full import sweep as lvf
from papers.lora_vs_full.base import FACTS_TEXT, BaseSpec, ensure_base, export_hf, load_base, source_documents
from papers.lora_vs_full.finetune import (
    DeltaSpectra,
    MethodSpec,
    add_dropout,
    build_model,
    evaluate_merged,
    finetune_main,
    hf_lm_loss,
    lora_deltas,
    merged_copy,
    read_run,
    target_linears,
)
from papers.lora_vs_full.tasks import ConditionSpec, encode_pairs, fact_cloze_items, task_material
from shared.data.corpora import load_corpus
from shared.data.generated import arithmetic, facts, functions
from shared.data.tokenizer import train_bpe
from shared.models.gpt import GPT, GPTConfig
from shared.models.gpt_hf import gpt_from_llama, gpt_to_llama

ALL = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def tiny_gpt(vocab: int = 300, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab, n_layer=2, n_head=2, d_model=32, d_ff=64, max_seq_len=128)).eval()


@pytest.fixture(scope="module")
def tokenizer():
    texts = [arithmetic.to_text(r) for r in arithmetic.generate_arithmetic(150, seed=5)]
    texts += [functions.to_text(r) for r in functions.generate_functions(150, seed=5)]
    texts += facts.generate_fact_base(4, 0).documents()
    return train_bpe(texts, vocab_size=400, show_progress=False)


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory, tokenizer):
    return export_hf(tiny_gpt(len(tokenizer)), tokenizer, tmp_path_factory.mktemp("base") / "hf")


def test_lora_starts_at_the_base_and_merges_back_into_our_gpt():
    gpt = tiny_gpt()
    x = torch.randint(0, 300, (2, 12))
    model = build_model(gpt_to_llama(gpt), MethodSpec("lora", rank=2, targets="all"))
    with torch.no_grad():
        assert torch.allclose(model(input_ids=x).logits, gpt(x).logits, atol=1e-5)     # B = 0 at init
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.2)
        adapted = model(input_ids=x).logits
        assert not torch.allclose(adapted, gpt(x).logits, atol=1e-3)
        merged = merged_copy(model)
        assert torch.allclose(gpt_from_llama(merged)(x).logits, adapted, atol=1e-5)        # merge + convert back = peft forward
    base_w = {n: m.weight for n, m in target_linears(gpt_to_llama(gpt)).items()}
    merged_w = {n: m.weight for n, m in target_linears(merged).items()}
    deltas = lora_deltas(model)
    assert sorted(n.split(".")[-1] for n in deltas) == sorted(ALL * 2)
    for name, d in deltas.items():
        assert torch.allclose(merged_w[name] - base_w[name], d, atol=1e-6)
        assert torch.linalg.matrix_rank(d) <= 2


@pytest.mark.parametrize("targets,kinds", [("attention", ALL[:4]), ("mlp", ALL[4:])])
def test_lora_targets_and_frozen_base(targets, kinds):
    model = build_model(gpt_to_llama(tiny_gpt()), MethodSpec("lora", rank=3, targets=targets))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert {n.split(".lora_")[0].split(".")[-1] for n in trainable} == set(kinds)
    shapes = {"q_proj": (32, 32), "k_proj": (32, 32), "v_proj": (32, 32), "o_proj": (32, 32),
              "gate_proj": (64, 32), "up_proj": (64, 32), "down_proj": (32, 64)}
    expected = 2 * sum(3 * (shapes[k][0] + shapes[k][1]) for k in kinds)          # 2 layers, r (in + out)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == expected
    assert MethodSpec("lora", rank=3).lora_alpha == 6.0
    with pytest.raises(ValueError, match="valid choices"):
        MethodSpec("lora", targets="embeddings")


def test_masked_loss_and_dropout_hooks():
    gpt = tiny_gpt()
    hf = build_model(gpt_to_llama(gpt), MethodSpec("full"))
    ids = torch.randint(0, 300, (2, 10))
    mask = torch.zeros(2, 10, dtype=torch.bool)
    mask[:, 6:] = True
    loss, info = hf_lm_loss(hf, {"input_ids": ids, "targets": ids.roll(-1, 1), "loss_mask": mask})
    logits = gpt(ids).logits
    ref = torch.nn.functional.cross_entropy(logits[:, 6:].flatten(0, 1), ids.roll(-1, 1)[:, 6:].flatten())
    assert torch.allclose(loss, ref, atol=1e-5) and info["num_tokens"] == 8
    add_dropout(hf, 0.5)
    hf.eval()
    assert torch.allclose(hf(input_ids=ids).logits, logits, atol=1e-5)            # inactive in eval mode
    hf.train()
    assert not torch.allclose(hf(input_ids=ids).logits, logits, atol=1e-3)


def test_encode_pairs_masks_exactly_the_response(tokenizer):
    data = encode_pairs(tokenizer, [("Question: 2+2?\nAnswer:", " 4"), ("Q", " a longer answer")], max_len=64)
    ids, tgt, mask = data["input_ids"], data["targets"], data["loss_mask"]
    eos = tokenizer.eos_token_id
    for i, (p, r) in enumerate([("Question: 2+2?\nAnswer:", " 4"), ("Q", " a longer answer")]):
        n_p = len(tokenizer.encode(p))
        response = tokenizer.encode(r) + [eos]
        assert tgt[i][mask[i]].tolist() == response
        assert not mask[i, :n_p - 1].any()
    assert ids.shape == tgt.shape == mask.shape


def test_encode_pairs_drops_prompts_that_fill_max_len(tokenizer):
    with pytest.warns(UserWarning, match="dropped 1 of 2"):
        data = encode_pairs(tokenizer, [("word " * 40, " x"), ("Q", " a")], max_len=8)
    assert len(data["input_ids"]) == 1
    with pytest.raises(ValueError):
        encode_pairs(tokenizer, [("word " * 40, " x")], max_len=8)


def test_delta_spectra_against_the_captured_base():
    gpt = tiny_gpt()
    model = build_model(gpt_to_llama(gpt), MethodSpec("full"))
    cb = DeltaSpectra([1, 2], MethodSpec("full"), keep_spectra=True)
    cb.capture_base(model)
    trainer = SimpleNamespace(step=1, model=model, dist=SimpleNamespace(is_main=True))
    cb.on_step_end(trainer, None)
    assert all(r["delta_rank"] == 0 for r in cb.records[0]["rows"])        # nothing changed yet
    with torch.no_grad():
        q = model.model.layers[0].self_attn.q_proj.weight
        q += 0.1 * torch.outer(torch.randn(q.shape[0]), torch.randn(q.shape[1]))   # a rank-1 change
    trainer.step = 2
    cb.on_step_end(trainer, None)
    cb.on_step_end(trainer, None)                                          # once per step
    rows = {r["name"]: r for r in cb.records[1]["rows"]}
    assert len(cb.records) == 2 and rows["model.layers.0.self_attn.q_proj"]["delta_rank"] == 1
    assert sum(r["delta_rank"] for r in rows.values()) == 1
    restored = DeltaSpectra([1, 2], MethodSpec("full"))
    restored.load_state_dict(cb.state_dict())
    assert restored.records == cb.records


def test_fact_cloze_items_are_well_formed(tokenizer):
    items = fact_cloze_items(tokenizer, 4)
    assert items and all(len(it.choices) == 4 and 0 <= it.answer < 4 for it in items)
    assert all(len({tuple(c) for c in it.choices}) == 4 for it in items)


def _spec(base_dir, method, regime="ift", steps=4, **kw):
    task = ConditionSpec("math" if regime == "ift" else "code", regime, n_train=24, n_test=4, max_len=96,
                    source_corpora={"functions": 20}, source_windows=4, fact_entities=4).to_dict()
    train = dict(max_steps=steps, lr=1e-3, optimizer="lionw", betas=[0.9, 0.99], global_batch_size=4,
                 micro_batch_size=4, schedule="constant", progress_bar=False)
    return lvf.make_spec(base_dir, task, method, train, eval_steps=[2], spectral_steps=[2, steps],
                         max_new_tokens=8, **kw)


@pytest.mark.parametrize("method", [dict(method="full"), dict(method="lora", rank=2, targets="all")])
def test_finetune_run_end_to_end(run_dir, base_dir, method):
    spec = _spec(base_dir, method, save_merged=True)
    finetune_main(spec.to_dict(), str(run_dir))
    res = read_run(run_dir)
    assert [e["step"] for e in res.evals] == [0, 2, 4]              # eval_at_start: the base itself
    assert {"target/loss", "source/loss", "source/functions_loss", "source/facts_acc"} <= set(res.evals[-1])
    assert [s["step"] for s in res.spectra] == [2, 4]
    rows = res.spectra[-1]["rows"]
    assert len(rows) == 14 and all(0 < r["delta_rank"] <= r["full_rank"] for r in rows)
    if method["method"] == "lora":
        assert all(r["delta_rank"] <= 2 for r in rows)
        assert res.final["trainable_params"] < res.final["total_params"] / 10
    final = evaluate_merged(run_dir)
    assert 0.0 <= final["exact_match"] <= 1.0 and final["n"] == 4


def test_cpt_run_and_results_tables(tmp_path, base_dir):
    specs = {name: spec for name, spec in [
        (lvf.run_name(s.task, s.method, s.train), s) for s in
        (_spec(base_dir, dict(method="full"), regime="cpt", steps=2),
         _spec(base_dir, dict(method="lora", rank=2), regime="cpt", steps=2))]}
    assert lvf.launch(specs, tmp_path) == list(specs)
    assert lvf.launch(specs, tmp_path) == []                     # finished runs with the same spec are kept
    evals = lvf.results_frame(tmp_path, specs)
    assert set(evals["step"]) == {0, 2} and set(evals["method"]) == {"full", "lora"}
    assert (evals[evals["step"] == 0]["target_loss"].nunique()) == 1   # one base evaluation shared
    best = lvf.best_lr(evals)
    assert len(best) == 2
    spectra = lvf.spectra_frame(tmp_path, specs)
    assert set(spectra["kind"]) == {"attention", "mlp"} and set(spectra["layer"]) == {0, 1}


@pytest.mark.parametrize("scale", ["smoke", "small", "full"])
def test_presets_plan_valid_runs(scale):
    sweep = scales.SWEEP[scale]
    specs = lvf.plan_sweep(sweep, "/base", data_dir="/data")
    per_config = 1 if sweep["duration_mode"] == "along" else None
    expected = 0       # each condition over its own LR grids, one run per duration or one along them
    for c in sweep["conditions"]:
        cs = lvf.condition_sweep(sweep, c)
        runs = 1 if cs["duration_mode"] == "along" else len(lvf.durations_of(sweep, c))
        expected += (len(cs["full_lrs"]) + len(cs["lora_lrs"])) * runs
    assert len(specs) == expected
    main = MethodSpec("lora", **sweep["lora_main"]).label
    best = pd.DataFrame([{"condition": c, "config": main, "lr": sweep["lora_lrs"][0]} for c in sweep["conditions"]])
    variants = lvf.plan_variants(sweep, "/base", best, data_dir="/data")
    assert variants and not set(variants) & set(specs)
    # every LoRA configuration compared is swept over the main LoRA config's LR grid
    n_check = len(sweep["optimizer_check"]["full_lrs"]) + len(sweep["optimizer_check"]["lora_lrs"])
    assert len(sweep["optimizer_check"]["full_lrs"]) == len(sweep["full_lrs"])
    n_durations = 1 if per_config else None
    if n_durations:
        assert len(variants) == (len(sweep["variant_conditions"]) * len(sweep["lora_variants"]) * len(sweep["lora_lrs"])
                                 + n_check)
    for spec in list(specs.values())[:3] + list(variants.values())[:3]:
        assert json.loads(json.dumps(spec.to_dict())) == spec.to_dict()            # travels to torchrun workers
        if scale == "full":
            assert spec.task["source"] == "files" and spec.train["parallelism"] == "fsdp"


def test_function_documents_draw_at_every_seed():
    """The generated functions corpus of the base's tokenizer text: the default draw at every seed (seed 1
    once fell short of 3000 disjoint train tasks and raised)."""
    assert source_documents("functions", "train", max_docs=50, seed=0) == load_corpus("functions", "train",
                                                                                        max_docs=50, seed=0)
    assert len(source_documents("functions", "train", max_docs=50, seed=1)) == 50


def test_base_pretrains_through_the_shared_pipeline_and_exports(tmp_path):
    spec = BaseSpec(sources={"fortunes": 0.5, FACTS_TEXT: 0.5}, model=dict(n_layer=1, n_head=2, d_model=32, d_ff=64),
                    train=dict(max_steps=2, global_batch_size=4, micro_batch_size=4, lr=1e-3, progress_bar=False),
                    vocab_size=300, seq_len=32, max_docs={"fortunes": 200}, eval_docs=5)
    hf_dir = ensure_base(spec, tmp_path / "base")
    model, tok = load_base(hf_dir)
    assert model.config.num_hidden_layers == 1 and len(tok) == 300
    records = [json.loads(line) for line in (tmp_path / "base" / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r.get("kind") == "eval"]
    assert evals and {"heldout/fortunes_loss", "heldout/facts_text_loss"} <= set(evals[-1])
    assert ensure_base(spec, tmp_path / "base") == hf_dir                  # the same spec is not retrained


def test_ensure_base_resumes_a_killed_run_and_deletes_only_another_spec(tmp_path, monkeypatch):
    import papers.lora_vs_full.base as base_module
    calls = []

    def fake_training(entry, config, run_dir, **kw):        # a run killed before its export: a checkpoint, no hf/
        calls.append(run_dir)
        assert (run_dir / "base_spec.json").exists()        # written first, so the next call recognises the run
        (run_dir / "checkpoints").mkdir(exist_ok=True)
    monkeypatch.setattr(base_module, "run_training", fake_training)
    train = dict(max_steps=2, global_batch_size=4, micro_batch_size=4)
    spec = BaseSpec(sources={"fortunes": 1.0}, model=dict(n_layer=1), train=train)
    run_dir = tmp_path / "base"
    ensure_base(spec, run_dir)
    (run_dir / "checkpoints" / "step_1").mkdir()
    ensure_base(spec, run_dir)                                # same spec, not exported: resumed, nothing deleted
    assert len(calls) == 2 and (run_dir / "checkpoints" / "step_1").exists()
    ensure_base(BaseSpec(sources={"fortunes": 1.0}, model=dict(n_layer=2), train=train), run_dir)
    assert len(calls) == 3 and not (run_dir / "checkpoints" / "step_1").exists()   # another spec: started over
    ensure_base(spec, run_dir)
    (run_dir / "checkpoints" / "step_1").mkdir()
    ensure_base(spec, run_dir, rerun=True)                   # an explicit rerun starts over
    assert len(calls) == 5 and not (run_dir / "checkpoints" / "step_1").exists()


def test_neutral_pairs_use_neither_regimes_format():
    """IFT and CPT are compared on the held-out answers after a prompt in neither's training format:
    math gives the bare question (no "Question: / Answer:" template, which only IFT trains on);
    code prompts are plain source in both regimes."""
    math = task_material(ConditionSpec("math", "cpt", n_train=8, n_test=4))
    assert len(math.neutral_pairs) == len(math.test_pairs) == 4
    for (prompt, answer), (ift_prompt, ift_answer) in zip(math.neutral_pairs, math.test_pairs):
        assert "Question:" not in prompt and "Answer:" not in prompt and prompt.strip() in ift_prompt
        assert answer == ift_answer.lstrip()
    code = task_material(ConditionSpec("code", "ift", n_train=8, n_test=4))
    assert code.neutral_pairs == code.test_pairs


@pytest.mark.slow
def test_forgetting_benchmarks_are_scored_by_the_harness(tmp_path):
    """The full preset's forgetting eval: HellaSwag, ARC-Challenge and WinoGrande read from data_dir in their
    public formats and scored by lm-evaluation-harness on the model being finetuned (a transformers model)."""
    pytest.importorskip("lm_eval")
    from papers.lora_vs_full.finetune import benchmark_eval
    from papers.lora_vs_full.tasks import ConditionSpec
    from shared.data.tokenizer import train_bpe
    from shared.eval.benchmark_fixtures import write_fixtures
    from shared.models.gpt import GPT, GPTConfig
    from shared.models.gpt_hf import gpt_to_llama

    tasks = ["hellaswag", "arc_challenge", "winogrande"]
    write_fixtures(tmp_path / "benchmarks", tasks, rows=2)
    tok = train_bpe([f"What is {a} plus {b}? the answer is {a + b}" for a in range(20) for b in range(5)], 300,
                    show_progress=False)
    torch.manual_seed(0)
    model = gpt_to_llama(GPT(GPTConfig(vocab_size=len(tok), n_layer=1, n_head=2, d_model=32, max_seq_len=256))).eval()
    spec = ConditionSpec(domain="math", regime="ift", source="files", data_dir=str(tmp_path), train_path="unused.jsonl",
                         benchmarks=tuple(tasks))
    out = benchmark_eval(spec, tok, batch_size=4)(model)
    assert {f"{t}_acc" for t in tasks} | {"hellaswag_acc_norm", "arc_challenge_acc_norm"} <= set(out)
    assert out["benchmarks_mean"] == pytest.approx(
        (out["hellaswag_acc_norm"] + out["arc_challenge_acc_norm"] + out["winogrande_acc"]) / 3)
    with pytest.raises(ValueError, match="has no data_dir"):
        benchmark_eval(ConditionSpec(domain="math", regime="ift", benchmarks=("piqa",)), tok, 4)
    assert benchmark_eval(ConditionSpec(domain="math", regime="ift"), tok, 4) is None


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("method", [dict(method="full"), dict(method="lora", rank=2, targets="all")])
def test_merged_model_of_a_sharded_run_is_gathered_whole(tmp_path, base_dir, method):
    """Under FSDP2 over two processes the merged model is built from the full state gathered from every
    rank's shards, and equals the merged model of the same run in one process."""
    from safetensors.torch import load_file
    merged = {}
    for n in (1, 2):
        spec = _spec(base_dir, method, steps=2, save_merged=True)
        spec.train.update(optimizer="adamw", micro_batch_size=2, parallelism="fsdp")
        spec.task["fact_entities"], spec.eval_steps, spec.spectral_steps = 0, [], []
        lvf.launch({"run": spec}, tmp_path / f"world{n}", nproc_per_node=n)
        folder = tmp_path / f"world{n}" / "run" / "merged"
        merged[n] = {k: v for f in sorted(folder.glob("*.safetensors")) for k, v in load_file(str(f)).items()}
    assert merged[1].keys() == merged[2].keys() and not any("lora" in k for k in merged[1])
    worst = max(float((merged[1][k].float() - merged[2][k].float()).abs().max()) for k in merged[1])
    assert worst < 1e-4, worst
    base = {k: v for f in sorted(base_dir.glob("*.safetensors")) for k, v in load_file(str(f)).items()}
    assert any(not torch.equal(base[k], merged[2][k]) for k in base if k in merged[2])   # it did train


def test_load_base_gives_fp32_master_weights_whatever_the_checkpoint_stores(tmp_path, tokenizer):
    export_hf(tiny_gpt(len(tokenizer)), tokenizer, tmp_path / "hf")
    model, _ = load_base(tmp_path / "hf", dtype="float16")
    model.save_pretrained(str(tmp_path / "fp16"))               # a checkpoint stored in float16, as Llama-2-7B's
    tokenizer.save_pretrained(str(tmp_path / "fp16"))
    assert next(load_base(tmp_path / "fp16")[0].parameters()).dtype == torch.float32
    assert next(load_base(tmp_path / "fp16", dtype="bfloat16")[0].parameters()).dtype == torch.bfloat16
