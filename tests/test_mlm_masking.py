"""shared.data.mlm: masking-rate schedules, 80/10/10 dynamic masking; shared.pipelines.mlm_pretrain:
progress from the trainer, exact resume, the pretraining entry point on the full-scale (cache) data
path, typed run configs; papers.mosaicbert.throughput: the padding benchmark's batches and timing."""
import json

import pytest
import torch

from papers.mosaicbert.throughput import padded_mlm_batch, time_training_steps
from shared.data.formats import write_jsonl
from shared.data.mlm import MaskingSchedule, SpecialIds, fixed_rate_batches, mask_tokens, pad_rows, padding_fraction
from shared.data.mlm_cache import load_mlm_cache, prepare_mlm_cache
from shared.data.tokenizer import ENCODER_SPECIAL_TOKENS, train_bpe
from shared.models.bert import BertConfig, BertForMaskedLM
from shared.pipelines.mlm_pretrain import (
    MLMBatches,
    MLMPretrainConfig,
    bert_config,
    fill_data_dir,
    load_pretrained_mlm,
    mlm_loss,
    pretrain_mlm,
)
from shared.train import TrainConfig, Trainer
from shared.train.metrics import History
from shared.train.process_clock import read_process_time

SPECIAL = SpecialIds(mask=2, pad=1, cls=3, sep=4, special=(0, 1, 2, 3, 4), vocab_size=50)


def rows(n=64, s=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(4, s + 1, (n,), generator=g)
    return pad_rows([[3] + torch.randint(5, 50, (int(L) - 2,), generator=g).tolist() + [4] for L in lengths], s, 1)


def test_schedules():
    assert MaskingSchedule("constant", 0.15)(0.7) == 0.15
    lin = MaskingSchedule("linear", 0.3, 0.15)
    assert lin(0.0) == 0.3 and lin(1.0) == pytest.approx(0.15) and lin(0.5) == pytest.approx(0.225)
    assert lin(2.0) == pytest.approx(0.15)                          # progress is clamped
    cos = MaskingSchedule("cosine", 0.3, 0.15)
    assert cos(0.0) == pytest.approx(0.3) and cos(1.0) == pytest.approx(0.15) and cos(0.5) == pytest.approx(0.225)
    step = MaskingSchedule("step", 0.3, 0.15, step_at=0.25)
    assert step(0.2) == 0.3 and step(0.3) == 0.15
    assert lin.label == "linear 30%->15%" and MaskingSchedule("constant", 0.3).label == "fixed 30%"
    with pytest.raises(ValueError, match="valid choices"):
        MaskingSchedule("exponential", 0.3, 0.15)
    with pytest.raises(ValueError, match="p_f"):
        MaskingSchedule("linear", 0.3)


def test_mask_tokens_80_10_10_and_never_specials_or_padding():
    data = rows(n=2000, s=32)
    ids, mask = data["input_ids"], data["attention_mask"]
    out, labels = mask_tokens(ids, mask, 0.3, SPECIAL, torch.Generator().manual_seed(0))
    selected = labels != -100
    candidates = mask & (ids > 4)
    assert not (selected & ~candidates).any()                        # never [CLS], [SEP], padding
    assert torch.equal(labels[selected], ids[selected])
    assert selected.sum() / candidates.sum() == pytest.approx(0.3, abs=0.01)
    to_mask = (out[selected] == SPECIAL.mask).float().mean()
    unchanged = (out[selected] == ids[selected]).float().mean()
    assert to_mask == pytest.approx(0.8, abs=0.02)
    assert unchanged == pytest.approx(0.1 + 0.1 / 45, abs=0.02)      # kept, or replaced by itself
    assert torch.equal(out[~selected], ids[~selected])
    assert not torch.isin(out[selected & (out != SPECIAL.mask)], torch.tensor([0, 1, 3, 4])).any()


def test_eval_batches_are_fixed():
    data = rows()
    a = fixed_rate_batches(data, 0.15, SPECIAL, batch_size=16)
    b = fixed_rate_batches(data, 0.15, SPECIAL, batch_size=16)
    assert len(a) == 4 and all(torch.equal(x["labels"], y["labels"]) for x, y in zip(a, b))
    assert 0.0 < padding_fraction(a) < 1.0


def test_rate_follows_training_progress_and_resume_is_exact(tmp_path):
    """In the shared Trainer, with grad accumulation and a resume, the micro-batches of update s are
    masked at schedule(s / max_steps) and are the same batches an uninterrupted run draws."""

    data = rows(n=64, s=16)
    schedule = MaskingSchedule("linear", 0.5, 0.1)

    class Recording(MLMBatches):
        def __next__(self):
            self.seen.append((self.rate, self.draws))
            return super().__next__()

    def fit(run_dir, until=None, resume="latest"):
        torch.manual_seed(0)
        model = BertForMaskedLM(BertConfig(vocab_size=50, n_layer=1, n_head=2, d_model=16, d_ff=32, max_seq_len=16))
        batches = Recording(data, 8, schedule, SPECIAL, seed=3)
        batches.seen = []
        cfg = TrainConfig(max_steps=6, grad_accum=2, lr=1e-3, run_dir=str(run_dir), progress_bar=False,
                          precision="fp32", resume=resume)
        trainer = Trainer(model, mlm_loss, batches, cfg, callbacks=[batches.progress_callback()])
        trainer.fit(until_step=until)
        return batches.seen, model

    seen, model_a = fit(tmp_path / "a")
    assert [r for r, _ in seen] == pytest.approx([schedule(s / 6) for s in range(6) for _ in range(2)])
    first, _ = fit(tmp_path / "b", until=3)
    rest, model_b = fit(tmp_path / "b")
    assert first + rest == seen
    for a, b in zip(model_a.parameters(), model_b.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_pretrain_entry_point_on_a_prepared_cache(tmp_path):
    """The full-scale path: documents on disk -> token cache -> pretrain_mlm -> checkpoint + eval."""

    words = "the cat sat on a mat while dogs ran in the park and birds sang".split()
    g = torch.Generator().manual_seed(0)
    docs = [" ".join(words[int(i)] for i in torch.randint(len(words), (int(n),), generator=g))
            for n in torch.randint(3, 20, (120,), generator=g)]
    write_jsonl(tmp_path / "docs" / "train.jsonl", [{"text": d} for d in docs[:100]])
    write_jsonl(tmp_path / "docs" / "eval.jsonl", [{"text": d} for d in docs[100:]])
    tok = train_bpe(docs, vocab_size=300, special_tokens=ENCODER_SPECIAL_TOKENS, show_progress=False)
    tok.save_pretrained(str(tmp_path / "tok"))
    for split in ("train", "eval"):
        prepare_mlm_cache(tmp_path / "docs" / f"{split}.jsonl", tok, 24, tmp_path / "cache" / split, shard_rows=40,
                          chunk=40)
    cache = load_mlm_cache(tmp_path / "cache" / "train")
    assert len(cache["input_ids"]) == 100
    assert cache["input_ids"][torch.tensor([0, 99])].shape == (2, 24)
    config = {"model": dict(n_layer=1, n_head=2, d_model=16, d_ff=32, max_seq_len=24, unpad=True, alibi=True),
              "train": dict(max_steps=4, lr=1e-3, progress_bar=False, precision="fp32", eval_every=2),
              "masking": {"kind": "linear", "p_i": 0.3, "p_f": 0.15},
              "data": {"kind": "cache", "train_dir": str(tmp_path / "cache" / "train"),
                       "eval_dir": str(tmp_path / "cache" / "eval"), "tokenizer_dir": str(tmp_path / "tok")},
              "micro_batch_size": 8, "eval_batch_size": 8}
    json.dumps(config)
    pretrain_mlm(config, str(tmp_path / "run"))
    history = History.from_run_dir(tmp_path / "run")
    assert [r["step"] for r in history.eval] == [2, 4]
    assert history.eval[-1]["mlm15/loss"] > 0
    cpu = read_process_time(tmp_path / "run")
    assert sorted(cpu) == [1, 2, 3, 4] and all(cpu[s] < cpu[s + 1] for s in (1, 2, 3))
    model = load_pretrained_mlm(tmp_path / "run")
    assert model.cfg.vocab_size == len(tok) and model.cfg.unpad


def test_benchmark_batches_have_the_requested_padding_and_steps_are_timed():
    for p in (0.0, 0.25, 0.5, 0.75):
        b = padded_mlm_batch(p, batch=16, seq=128, vocab=50)
        assert 1 - b["attention_mask"].float().mean() == pytest.approx(p, abs=0.03)
        assert ((b["labels"] != -100) <= b["attention_mask"].bool()).all()
    model = BertForMaskedLM(BertConfig(vocab_size=50, n_layer=1, n_head=2, d_model=16, d_ff=32, max_seq_len=16,
                                       unpad=True))
    times = time_training_steps({"m": model}, padded_mlm_batch(0.5, 4, 16, 50), rounds=2)
    assert times["m"]["wall_s"] > 0 and times["m"]["cpu_s"] >= 0
    with pytest.raises(ValueError):
        padded_mlm_batch(1.0, 4, 16, 50)


def test_fill_data_dir():
    preset = {"a": "{data_dir}/c4", "b": ["{data_dir}/x", 3], "c": None}
    assert fill_data_dir(preset, "/d") == {"a": "/d/c4", "b": ["/d/x", 3], "c": None}
    with pytest.raises(ValueError, match="data_dir"):
        fill_data_dir(preset, None)


def test_masking_schedule_from_dict_is_strict():
    assert MaskingSchedule.from_dict({"kind": "linear", "p_i": 0.3, "p_f": 0.15}) == MaskingSchedule("linear", 0.3, 0.15)
    with pytest.raises(ValueError, match="valid keys"):
        MaskingSchedule.from_dict({"kind": "linear", "p_start": 0.3})


def test_pretrain_config_builds_typed_and_names_flavours():
    data = {"kind": "corpora", "corpora": ["wordnet"], "vocab_size": 512, "seq_len": 32}
    cfg = MLMPretrainConfig.from_dict({"model": {"flavour": "mosaicbert-base", "n_layer": 2},
                                       "train": {"max_steps": 3, "betas": [0.9, 0.98]},
                                       "masking": {"kind": "constant", "p_i": 0.3}, "data": data,
                                       "micro_batch_size": 8})
    assert cfg.train.betas == (0.9, 0.98) and cfg.data.corpora == ("wordnet",)
    assert MLMPretrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg      # JSON round trip
    bert = bert_config(cfg.model, vocab_size=300)
    assert bert.alibi and bert.unpad and bert.n_layer == 2 and bert.vocab_size == 300
    assert bert_config("bert-large").n_layer == 24
    with pytest.raises(ValueError, match="unknown model flavour"):
        MLMPretrainConfig.from_dict({**cfg.to_dict(), "model": "bert-huge"})
    with pytest.raises(ValueError, match="valid keys"):
        bert_config({"n_layers": 2})
    with pytest.raises(ValueError, match="needs"):
        MLMPretrainConfig.from_dict({**cfg.to_dict(), "data": {"kind": "cache", "train_dir": "x"}})
    with pytest.raises(ValueError, match="differs"):
        MLMPretrainConfig.from_dict({**cfg.to_dict(), "train": {"micro_batch_size": 4}})


def test_fill_data_dir_reaches_into_typed_specs():
    cfg = MLMPretrainConfig.from_dict({"model": "bert-base", "train": {}, "masking": {},
                                       "data": {"kind": "cache", "train_dir": "{data_dir}/t", "eval_dir": "{data_dir}/e",
                                                "tokenizer_dir": "{data_dir}/tok"}, "micro_batch_size": 8})
    filled = fill_data_dir(cfg, "/d")
    assert (filled.data.train_dir, filled.data.tokenizer_dir) == ("/d/t", "/d/tok") and filled.model == "bert-base"
