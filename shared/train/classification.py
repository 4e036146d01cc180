"""Image classification on the shared Trainer: the loss, evaluation functions and a one-call
`fit_classifier` that the vision papers (example difficulty, KD sequences, prunability) use.

    trainer = fit_classifier(model, train_set, TrainConfig(max_steps=300, lr=3e-3), batch_size=64,
                             eval_sets={"test": test_set}, callbacks=[recorder])
    trainer.history.final("test/acc")

Batches are {"x": [B, C, H, W], "y": [B], "index": [B]} from `ResumableBatches`.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from shared.data.images import AugmentedBatches, ImageSet, as_tensors

from .config import TrainConfig
from .data import ResumableBatches
from .trainer import Trainer


def cross_entropy_loss(model: nn.Module, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
    """Mean cross-entropy of model(batch["x"]).logits (B, classes) against batch["y"] (B,); logs the
    batch accuracy."""
    logits = model(batch["x"]).logits
    loss = F.cross_entropy(logits, batch["y"])
    return loss, {"acc": (logits.argmax(-1) == batch["y"]).float().mean().detach()}


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Logits [N, num_classes] in eval mode (the model's mode is restored)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        out = [model(x[s:s + batch_size].to(device)).logits.float().cpu() for s in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out)


def accuracy(model: nn.Module, data: ImageSet, batch_size: int = 1024) -> float:
    """Fraction of `data` the model classifies correctly (eval mode)."""
    return float((predict_logits(model, data.x, batch_size).argmax(-1) == data.y).float().mean())


def classification_eval(data: ImageSet, batch_size: int = 1024) -> Callable[[nn.Module], dict[str, float]]:
    """Trainer eval fn: {"acc", "loss"} of the model on `data` (run by the trainer under no_grad)."""
    def evaluate(model: nn.Module) -> dict[str, float]:
        logits = predict_logits(model, data.x, batch_size)
        return {"acc": float((logits.argmax(-1) == data.y).float().mean()),
                "loss": float(F.cross_entropy(logits, data.y))}
    return evaluate


def sgd_factory(momentum: float = 0.9, nesterov: bool = False):
    """optimizer_factory for Trainer: SGD with momentum and coupled L2 weight decay (the open_lth /
    lottery-ticket CIFAR recipes), over all parameters."""
    def build(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
        return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=momentum, nesterov=nesterov,
                               weight_decay=config.weight_decay)
    return build


def fit_classifier(model: nn.Module, train: ImageSet, config: TrainConfig, batch_size: int,
                   loss_fn: Callable[[nn.Module, Any], tuple[torch.Tensor, dict]] | None = None,
                   eval_sets: Mapping[str, ImageSet] | None = None, callbacks: Sequence[Any] = (),
                   optimizer_factory=None, data_seed: int | None = None, augment: Mapping[str, Any] | None = None
                   ) -> Trainer:
    """Build a Trainer over shuffled batches of `train` and fit it; returns the trainer (its
    `.history` holds the train and eval records, `.model` the trained model).

    data_seed: the batch order's seed (default: config.seed). augment: keyword arguments of
    shared.data.images.AugmentedBatches (e.g. {"pad": 4, "flip": True}); None = no augmentation. eval_sets: {name: ImageSet}, logged
    as "name/acc" and "name/loss" every config.eval_every steps and at the end.
    """
    seed = config.seed if data_seed is None else data_seed
    batches = ResumableBatches(as_tensors(train), batch_size, seed=seed)
    if augment is not None:
        batches = AugmentedBatches(batches, seed=seed, **augment)
    callbacks = list(callbacks)
    if hasattr(loss_fn, "on_step_end") and loss_fn not in callbacks:
        callbacks.append(loss_fn)   # e.g. DistillationLoss reads the step
    evals = {name: classification_eval(data) for name, data in (eval_sets or {}).items()}
    trainer = Trainer(model, loss_fn or cross_entropy_loss, batches, config, eval_fns=evals,
                      callbacks=callbacks, optimizer_factory=optimizer_factory)
    trainer.fit()
    return trainer
