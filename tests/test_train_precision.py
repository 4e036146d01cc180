"""precision="amp_fp16" on CPU: fp16 autocast with fp32 master weights and dynamic loss scaling
(torch.amp.GradScaler): it trains, clips the unscaled gradients, and skips a step whose gradients
hold inf, halving the scale. Other precisions log no scaler fields."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from _train_toy import InfGradientAt, ToyNet, classify_loss, make_data
from shared.train import ResumableBatches, Trainer, TrainConfig
from shared.train.config import PARALLELISMS, PRECISIONS
from shared.train.trainer import autocast_dtype


def _trainer(loss_fn=classify_loss, **overrides):
    torch.manual_seed(0)
    kw = dict(max_steps=30, lr=1e-2, grad_accum=2, precision="amp_fp16", progress_bar=False)
    kw.update(overrides)
    return Trainer(ToyNet(), loss_fn, ResumableBatches(make_data(), 16, seed=5), TrainConfig(**kw))


def test_choices_and_autocast_dtypes():
    assert "amp_fp16" in PRECISIONS and "fsdp_grad_op" in PARALLELISMS
    assert autocast_dtype("amp_fp16", torch.device("cpu")) == torch.float16
    assert autocast_dtype("bf16", torch.device("cpu")) is None          # CPU bf16 runs fp32, as before
    assert autocast_dtype("bf16", torch.device("cuda")) == torch.bfloat16
    assert autocast_dtype("fp32", torch.device("cuda")) is None
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="fp16")


def test_amp_fp16_trains_a_tiny_model_in_fp16():
    dtypes = []

    def loss_fn(model, batch):
        x, y = batch
        logits = model(x)
        dtypes.append(logits.dtype)
        return F.cross_entropy(logits, y), {}

    trainer = _trainer(loss_fn)
    assert trainer.precision == "amp_fp16" and trainer.scaler is not None
    history = trainer.fit()
    assert set(dtypes) == {torch.float16}
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())   # fp32 master weights
    assert history.losses[-1] < 0.5 * history.losses[0]
    last = history.train[-1]
    assert last["loss_scale"] == 2.0 ** 16 and last["skipped_steps"] == 0


def test_other_precisions_have_no_scaler_and_log_as_before():
    trainer = _trainer(precision="bf16", max_steps=2)
    assert trainer.scaler is None and trainer.precision == "fp32"
    record = trainer.fit().train[-1]
    assert "loss_scale" not in record and "skipped_steps" not in record


def test_clipping_sees_unscaled_gradients():
    """The first step's gradient norm under amp_fp16 is the fp32 run's (to fp16 rounding), not 2**16 times
    it: the gradients are unscaled before clip_grad_norm_."""
    fp16 = _trainer(max_steps=1, grad_clip=0.1).fit().train[0]["grad_norm"]
    fp32 = _trainer(max_steps=1, grad_clip=0.1, precision="fp32").fit().train[0]["grad_norm"]
    assert fp16 == pytest.approx(fp32, rel=1e-2)


def test_inf_gradient_skips_the_step_and_halves_the_scale():
    loss_fn = InfGradientAt(3)
    trainer = _trainer(loss_fn, max_steps=5)
    loss_fn.trainer = trainer
    weights = {}

    class Snapshot:
        def on_step_end(self, trainer, record):
            weights[trainer.step] = [p.detach().clone() for p in trainer.model.parameters()]

    trainer.callbacks.append(Snapshot())
    history = trainer.fit()
    assert [r["skipped_steps"] for r in history.train] == [0, 0, 1, 1, 1]
    assert [r["loss_scale"] for r in history.train] == [2.0 ** 16] * 2 + [2.0 ** 15] * 3
    assert all(torch.equal(a, b) for a, b in zip(weights[2], weights[3]))        # step 3 changed nothing
    assert not all(torch.equal(a, b) for a, b in zip(weights[3], weights[4]))    # step 4 updated again
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    adam_steps = {int(s["step"]) for s in trainer.optimizer.state.values()}
    assert adam_steps == {4}                                                     # 5 steps, 1 skipped
    assert trainer.scheduler.last_epoch == 5                                     # the schedule went on
