"""The training loop: learning, the JSONL log, accumulation, eval, callbacks, throughput fields."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from _train_toy import TinyLM, ToyNet, classify_loss, lm_loss, make_data
from shared.train import ResumableBatches, Trainer, TrainConfig, read_metrics


def _fit(micro, accum, tmp_path=None, steps=8, **kw):
    torch.manual_seed(0)
    cfg = TrainConfig(max_steps=steps, lr=1e-2, grad_accum=accum, progress_bar=False,
                      run_dir=str(tmp_path) if tmp_path else None, **kw)
    trainer = Trainer(ToyNet(), classify_loss, ResumableBatches(make_data(), micro, seed=2), cfg)
    return trainer, trainer.fit()


def test_learns_and_logs_jsonl(tmp_path):
    trainer, history = _fit(16, 1, tmp_path, steps=40, warmup_steps=4, log_every=5,
                            eval_every=20, checkpoint_at_end=False)
    records = read_metrics(tmp_path)
    assert records == history.records
    train = history.train
    assert [r["step"] for r in train] == [5, 10, 15, 20, 25, 30, 35, 40]
    assert train[-1]["loss"] < 0.5 * train[0]["loss"]
    for key in ("loss", "lr", "grad_norm", "samples_per_s", "elapsed_s", "acc"):
        assert all(np.isfinite(r[key]) for r in train), key
    assert train[-1]["samples"] == 40 * 16
    assert all(r["mfu"] is None and r["tokens_per_s"] is None for r in train)  # CPU, no tokens
    assert trainer.precision == "fp32"  # bf16 requested by default; CPU runs fp32
    assert not (tmp_path / "checkpoints").exists()


def test_grad_accumulation_matches_full_batch():
    _, full = _fit(16, 1)
    _, accum = _fit(8, 2)
    _, accum4 = _fit(4, 4)
    assert np.abs(np.array(full.losses) - np.array(accum.losses)).max() < 1e-6
    assert np.abs(np.array(full.losses) - np.array(accum4.losses)).max() < 1e-6


def test_eval_callbacks_and_stop(tmp_path):
    seen = {"fit_start": 0, "steps": 0, "evals": [], "ckpts": [], "end": 0}

    class Recorder:
        def on_fit_start(self, trainer):
            seen["fit_start"] += 1

        def on_step_end(self, trainer, record):
            seen["steps"] += 1
            if trainer.step == 5:
                trainer.should_stop = True

        def on_eval_end(self, trainer, record):
            seen["evals"].append(record["step"])

        def on_checkpoint(self, trainer, path):
            seen["ckpts"].append(path.name)

        def on_fit_end(self, trainer, history):
            seen["end"] += 1

    x, y = make_data(1)

    def heldout(model):
        return {"loss": classify_loss(model, (x, y))[0].item(), "train_mode": float(model.training)}

    torch.manual_seed(0)
    cfg = TrainConfig(max_steps=10, eval_every=2, eval_at_start=True, progress_bar=False,
                      run_dir=str(tmp_path))
    trainer = Trainer(ToyNet(), classify_loss, ResumableBatches(make_data(), 8), cfg,
                      eval_fns={"heldout": heldout}, callbacks=[Recorder()])
    history = trainer.fit()
    assert trainer.step == 5 and seen["steps"] == 5 and seen["fit_start"] == seen["end"] == 1
    assert seen["evals"] == [0, 2, 4] and seen["ckpts"] == ["step_00000005"]
    assert all(r["heldout/train_mode"] == 0.0 for r in history.eval)
    assert [r["step"] for r in read_metrics(tmp_path) if r["kind"] == "eval"] == [0, 2, 4]


def test_tokens_per_s_and_mfu_fields():
    ids = torch.randint(0, 16, (64, 9))
    torch.manual_seed(0)
    model = TinyLM()
    cfg = TrainConfig(max_steps=3, progress_bar=False)
    history = Trainer(model, lm_loss, ResumableBatches(ids, 4), cfg).fit()
    last = history.train[-1]
    assert last["tokens"] == 3 * 4 * 9 and last["tokens_per_s"] > 0
    assert last["mfu"] is None  # the model reports flops_per_token, but a CPU has no peak


def test_bad_inputs():
    with pytest.raises(ValueError, match="micro_batch_size"):
        torch.manual_seed(0)
        Trainer(ToyNet(), classify_loss, ResumableBatches(make_data(), 4),
                TrainConfig(max_steps=2, micro_batch_size=8, global_batch_size=8,
                            progress_bar=False)).fit()
    with pytest.raises(RuntimeError, match="ran out"):
        Trainer(ToyNet(), classify_loss, iter([make_data()]),
                TrainConfig(max_steps=2, progress_bar=False)).fit()
    with pytest.raises(TypeError, match="TrainConfig"):
        Trainer(ToyNet(), classify_loss, iter([]), {"max_steps": 2})


@pytest.mark.slow
@pytest.mark.timeout(1200)   # inductor compiles C++ for each graph: minutes on a loaded 2-core CPU
def test_compiled_matches_eager():
    """torch.compile (inductor on CPU) beside the eager reference: same losses."""
    _, eager = _fit(16, 1, steps=3)
    _, compiled = _fit(16, 1, steps=3, compile=True)
    assert np.abs(np.array(eager.losses) - np.array(compiled.losses)).max() < 1e-5


def test_compile_passes_its_dynamic_setting_to_torch(monkeypatch):
    """TrainConfig.compile_dynamic reaches torch.compile (Module.compile) unchanged: None (torch's automatic
    dynamic shapes) by default, False for models whose blocks share code at different shapes."""
    seen = []
    monkeypatch.setattr(torch.nn.Module, "compile", lambda self, *a, **kw: seen.append(kw.get("dynamic", "unset")))
    for dynamic in (None, False):
        Trainer(ToyNet(), classify_loss, iter([]), TrainConfig(max_steps=1, progress_bar=False, compile=True,
                                                               compile_dynamic=dynamic))
    assert seen == [None, False]
