"""Exact resume: a run stopped at step N and resumed by a new Trainer gives the losses of the
uninterrupted run (CPU, with dropout so RNG restore matters, and a resumable data iterator)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from _train_toy import InfGradientAt, ToyNet, classify_loss, make_data
from shared.train import ResumableBatches, Trainer, TrainConfig, read_metrics

N = 6


def _trainer(run_dir, init_seed=0, optimizer="adamw", callbacks=None, loss_fn=classify_loss, **overrides):
    torch.manual_seed(init_seed)
    model = ToyNet(dropout=0.3)
    data = ResumableBatches(make_data(), 8, seed=5)
    kw = dict(max_steps=2 * N, lr=1e-2, optimizer=optimizer, weight_decay=0.1, warmup_steps=2,
              grad_accum=2, checkpoint_every=0, progress_bar=False, run_dir=str(run_dir))
    kw.update(overrides)
    trainer = Trainer(model, loss_fn, data, TrainConfig(**kw), callbacks=callbacks)
    if isinstance(loss_fn, InfGradientAt):
        loss_fn.trainer = trainer
    return trainer


def _train_losses(run_dir):
    recs = [r for r in read_metrics(run_dir) if r["kind"] == "train"]
    return [r["step"] for r in recs], np.array([r["loss"] for r in recs])


@pytest.mark.parametrize("optimizer", ["adamw", "lionw"])
def test_stop_and_resume_matches_uninterrupted(tmp_path, optimizer):
    _trainer(tmp_path / "full", optimizer=optimizer).fit()
    first = _trainer(tmp_path / "split", optimizer=optimizer)
    first.fit(until_step=N)  # checkpoints at N as a preempted job would
    assert first.step == N
    # a new process would build a differently initialized model and a fresh iterator
    second = _trainer(tmp_path / "split", init_seed=99, optimizer=optimizer)
    history = second.fit()
    steps_full, full = _train_losses(tmp_path / "full")
    steps_split, split = _train_losses(tmp_path / "split")
    assert steps_full == steps_split == list(range(1, 2 * N + 1))
    diff = float(np.abs(full - split).max())
    print(f"{optimizer}: max |loss diff| uninterrupted vs resumed = {diff}")
    assert diff <= 1e-6
    assert [r["step"] for r in history.train] == steps_full  # includes the resumed-from segment


def test_crash_after_checkpoint_resumes_and_rewrites_log(tmp_path):
    """A crash 2 steps after the checkpoint at N: the resumed run recomputes those steps, and the
    JSONL ends up with each step once and the uninterrupted losses."""
    _trainer(tmp_path / "full").fit()

    class Crash:
        def on_step_end(self, trainer, record):
            if trainer.step == N + 2:
                raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        _trainer(tmp_path / "crash", checkpoint_every=N, callbacks=[Crash()]).fit()
    assert max(_train_losses(tmp_path / "crash")[0]) == N + 2
    _trainer(tmp_path / "crash", checkpoint_every=N).fit()
    steps, losses = _train_losses(tmp_path / "crash")
    assert steps == list(range(1, 2 * N + 1))
    assert float(np.abs(losses - _train_losses(tmp_path / "full")[1]).max()) <= 1e-6


def test_dropout_makes_rng_restore_matter(tmp_path):
    """Control: without restoring the RNG the resumed losses differ, so the test above can fail."""
    _trainer(tmp_path / "full").fit()
    _trainer(tmp_path / "split").fit(until_step=N)
    resumed = _trainer(tmp_path / "split", init_seed=99)
    import shared.train.checkpoint as ckpt
    original = ckpt.set_rng_state
    ckpt.set_rng_state = lambda state: None
    try:
        resumed.fit()
    finally:
        ckpt.set_rng_state = original
    diff = np.abs(_train_losses(tmp_path / "full")[1] - _train_losses(tmp_path / "split")[1]).max()
    assert diff > 1e-4


def test_finished_run_resumes_to_no_op_and_resume_none_refuses(tmp_path):
    _trainer(tmp_path).fit()
    again = _trainer(tmp_path, init_seed=3)
    history = again.fit()
    assert again.step == 2 * N and len(history.train) == 2 * N
    with pytest.raises(ValueError, match="already holds checkpoints"):
        _trainer(tmp_path, resume=None).fit()


def test_iterator_without_state_warns(tmp_path):
    def batches():
        x, y = make_data()
        while True:
            yield x[:8], y[:8]

    with pytest.warns(UserWarning, match="exact resume impossible"):
        Trainer(ToyNet(), classify_loss, batches(), TrainConfig(max_steps=1, run_dir=str(tmp_path),
                                                                progress_bar=False))


def test_resume_with_changed_hyperparameters_warns(tmp_path):
    _trainer(tmp_path).fit(until_step=N)
    with pytest.warns(UserWarning, match=r"differs in \['lr'\]"):
        _trainer(tmp_path, lr=5e-3).fit()


class ParamEMA:
    """A stateful callback: exponential moving average of the weights."""

    def __init__(self):
        self.ema, self.updates = None, 0

    def on_step_end(self, trainer, record):
        params = [p.detach() for p in trainer.model.parameters()]
        if self.ema is None:
            self.ema = [p.clone() for p in params]
        else:
            for e, p in zip(self.ema, params):
                e.lerp_(p, 0.1)
        self.updates += 1

    def state_dict(self):
        return {"ema": self.ema, "updates": self.updates}

    def load_state_dict(self, state):
        self.ema, self.updates = state["ema"], state["updates"]


def test_stateful_callback_resumes(tmp_path):
    full = ParamEMA()
    _trainer(tmp_path / "full", callbacks=[full]).fit()
    _trainer(tmp_path / "split", callbacks=[ParamEMA()]).fit(until_step=N)
    resumed = ParamEMA()
    _trainer(tmp_path / "split", init_seed=99, callbacks=[resumed]).fit()
    assert resumed.updates == full.updates == 2 * N
    assert all(torch.equal(a, b) for a, b in zip(full.ema, resumed.ema))


def _amp_trainer(run_dir, init_seed=0):
    """amp_fp16 with an inf gradient at step 2, so the scale (2**15) and the skipped-step count (1)
    differ from a fresh scaler's when the run stops at N."""
    return _trainer(run_dir, init_seed, precision="amp_fp16", loss_fn=InfGradientAt(2))


def test_amp_fp16_stop_and_resume_matches_uninterrupted(tmp_path):
    full = _amp_trainer(tmp_path / "full")
    full.fit()
    _amp_trainer(tmp_path / "split").fit(until_step=N)
    resumed = _amp_trainer(tmp_path / "split", init_seed=99)
    resumed.fit()
    assert resumed.scaler.state_dict() == full.scaler.state_dict()
    assert resumed.scaler.get_scale() == 2.0 ** 15
    assert float(np.abs(_train_losses(tmp_path / "full")[1] - _train_losses(tmp_path / "split")[1]).max()) <= 1e-6
    recs = {p: [r for r in read_metrics(tmp_path / p) if r["kind"] == "train"] for p in ("full", "split")}
    for key in ("loss_scale", "skipped_steps"):
        assert [r[key] for r in recs["split"]] == [r[key] for r in recs["full"]]
    assert recs["split"][-1]["skipped_steps"] == 1


def test_amp_fp16_resume_without_scaler_state_differs(tmp_path):
    """Control: a scaler left fresh at the resume (scale 2**16, no skipped step) is detected above."""
    _amp_trainer(tmp_path).fit(until_step=N)
    resumed = _amp_trainer(tmp_path, init_seed=99)
    resumed.scaler.load_state_dict = lambda state: None
    resumed.fit()
    assert resumed.scaler.get_scale() == 2.0 ** 16


def test_amp_fp16_resume_from_a_bf16_checkpoint_warns(tmp_path):
    _trainer(tmp_path).fit(until_step=N)
    with pytest.warns(UserWarning, match="no loss-scaler state"):
        _trainer(tmp_path, precision="amp_fp16").fit()
