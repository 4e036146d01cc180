"""Magnitude pruning with masks kept through training, and iterative magnitude pruning (IMP) with
weight rewinding (Frankle & Carbin 2019; Frankle et al. 2020, "Linear mode connectivity and the
lottery ticket hypothesis": rewind to the weights of an early step k instead of initialization).

Masks are {parameter name: bool tensor of the parameter's shape}; True keeps the weight.

    masks = full_masks(model)                         # dense
    keeper = MaskKeeper(model, masks)                 # zeroes pruned grads; re-applies masks after each step
    Trainer(model, ..., callbacks=[keeper]).fit()
    masks = global_magnitude_prune(model, masks, 0.2) # drop 20% of the remaining weights, globally
    rewind(model, rewind_state, masks)                # back to step-k weights, pruned ones zeroed

`run_imp` drives the whole loop given a function that trains a (masked) model; the vision pipeline
(shared.pipelines.vision_classification.train_with_imp) gives it one. By default every level
retrains the whole schedule from the rewound weights; `continue_from_rewind=True` is rewinding as
Frankle et al. 2020 and open_lth run it: each level resumes at step k, with the LR schedule and the
batch order of step k (a fresh optimizer), and trains to the end.
"""
from __future__ import annotations

from collections.abc import Callable
import copy
import warnings
from dataclasses import dataclass, field

import torch
from torch import nn

Masks = dict[str, torch.Tensor]


def prunable_parameters(model: nn.Module, include_head: bool = True) -> dict[str, nn.Parameter]:
    """Weights of every Linear and Conv layer (biases and norm gains are never pruned).

    `include_head=False` leaves out the last Linear layer (the classifier), as some lottery-ticket
    setups do.
    """
    params = {}
    last_linear = None
    for mod_name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            name = f"{mod_name}.weight" if mod_name else "weight"
            params[name] = module.weight
            if isinstance(module, nn.Linear):
                last_linear = name
    if not include_head and last_linear is not None:
        params.pop(last_linear)
    if not params:
        raise ValueError("the model has no Linear or Conv weights to prune")
    return params


def full_masks(model: nn.Module, include_head: bool = True) -> Masks:
    return {n: torch.ones_like(p, dtype=torch.bool) for n, p in prunable_parameters(model, include_head).items()}


def sparsity(masks: Masks) -> float:
    """Fraction of the prunable weights that are pruned."""
    total = sum(m.numel() for m in masks.values())
    kept = sum(int(m.sum()) for m in masks.values())
    return 1.0 - kept / total


def _params_by_name(model: nn.Module, masks: Masks) -> dict[str, nn.Parameter]:
    named = dict(model.named_parameters())
    missing = sorted(set(masks) - set(named))
    if missing:
        raise ValueError(f"masks name parameters the model lacks: {missing[:5]}")
    for n, m in masks.items():
        if m.shape != named[n].shape:
            raise ValueError(f"mask {n} has shape {tuple(m.shape)}; the parameter has {tuple(named[n].shape)}")
    return {n: named[n] for n in masks}


@torch.no_grad()
def apply_masks(model: nn.Module, masks: Masks) -> None:
    """Zero the pruned weights in place."""
    for n, p in _params_by_name(model, masks).items():
        p.mul_(masks[n].to(p.device, p.dtype))


@torch.no_grad()
def global_magnitude_prune(model: nn.Module, masks: Masks, fraction: float) -> Masks:
    """New masks that also remove `fraction` of the currently kept weights: those of smallest
    |w| over all prunable layers together (global, unstructured). Ties at the threshold are
    broken by position, so exactly round(fraction * kept) weights go."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    params = _params_by_name(model, masks)
    kept_scores = torch.cat([p.detach().abs().flatten()[masks[n].flatten()].float().cpu() for n, p in params.items()])
    n_prune = int(round(fraction * kept_scores.numel()))
    if n_prune == 0:
        return {n: m.clone() for n, m in masks.items()}
    # Rank every kept weight; the n_prune smallest go. Pruned weights get +inf so they stay pruned.
    scores = torch.cat([torch.where(masks[n].flatten().cpu(), p.detach().abs().flatten().float().cpu(),
                                    torch.tensor(float("inf"))) for n, p in params.items()])
    order = torch.argsort(scores, stable=True)
    keep = torch.ones_like(scores, dtype=torch.bool)
    keep[order[:n_prune]] = False
    keep &= torch.cat([masks[n].flatten().cpu() for n in params])
    out, start = {}, 0
    for n, p in params.items():
        out[n] = keep[start:start + p.numel()].reshape(p.shape).to(masks[n].device)
        start += p.numel()
    return out


def rewind(model: nn.Module, state: dict[str, torch.Tensor], masks: Masks) -> None:
    """Load `state` (a state_dict saved at the rewind step) and zero the pruned weights."""
    model.load_state_dict(state)
    apply_masks(model, masks)


class MaskKeeper:
    """Keeps pruned weights at exactly zero through training.

    Gradient hooks zero the pruned entries' gradients (so gradient clipping and optimizer moments
    never see them), and, as a trainer callback, `on_step_end` re-applies the masks after every
    optimizer update (decoupled weight decay or momentum cannot revive a pruned weight). Call
    `remove()` when done with the model.
    """

    def __init__(self, model: nn.Module, masks: Masks):
        self.model, self.masks = model, masks
        params = _params_by_name(model, masks)
        self._handles = [p.register_hook(self._grad_hook(masks[n])) for n, p in params.items()]
        apply_masks(model, masks)

    @staticmethod
    def _grad_hook(mask: torch.Tensor):
        def hook(grad):
            return grad * mask.to(grad.device, grad.dtype)
        return hook

    def on_fit_start(self, trainer) -> None:
        apply_masks(self.model, self.masks)

    def on_step_end(self, trainer, record) -> None:
        apply_masks(self.model, self.masks)

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


class SnapshotAtStep:
    """Trainer callback that keeps a copy of the model's state_dict after optimizer step `step`
    (0 = before training): the rewind point of IMP with weight rewinding. With `with_data`, also
    the position of the trainer's batch stream there (`data_state`), for `StartAtStep`."""

    def __init__(self, model: nn.Module, step: int, with_data: bool = False):
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        self.model, self.step, self.with_data = model, step, with_data
        self.state: dict[str, torch.Tensor] | None = None
        self.data_state: dict | None = None
        if step == 0:
            self.state = copy.deepcopy(model.state_dict())

    def on_step_end(self, trainer, record) -> None:
        if trainer.step == self.step and self.state is None:
            self.state = copy.deepcopy(self.model.state_dict())
            if self.with_data:
                if not hasattr(trainer.train_data, "state_dict"):
                    raise ValueError("continuing from the rewind step needs train_data with state_dict()")
                self.data_state = copy.deepcopy(trainer.train_data.state_dict())


class StartAtStep:
    """Trainer callback that starts a fresh fit at step `snapshot.step` instead of 0: the trainer's
    step counter, its LR schedule (stepped forward `step` times) and its batch stream (loaded from
    `snapshot.data_state`) are moved there, so the fit runs steps step..max_steps-1 as the dense
    run did. The optimizer stays fresh (no momentum carried over), as in open_lth's training.train."""

    def __init__(self, snapshot: SnapshotAtStep):
        self.snapshot = snapshot

    def on_fit_start(self, trainer) -> None:
        step = self.snapshot.step
        if step == 0 or trainer.step != 0:
            return
        if self.snapshot.data_state is None:
            raise ValueError("the snapshot holds no batch-stream position (SnapshotAtStep(with_data=True))")
        trainer.train_data.load_state_dict(copy.deepcopy(self.snapshot.data_state))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")         # "lr_scheduler.step() before optimizer.step()"
            for _ in range(step):
                trainer.scheduler.step()
        trainer.step = step


@dataclass
class IMPResult:
    """One IMP run: per level (0 = dense) the sparsity and whatever `train` returned."""

    sparsity: list[float] = field(default_factory=list)
    metrics: list[dict] = field(default_factory=list)
    masks: list[Masks] = field(default_factory=list)


@dataclass
class ImpProgress:
    """Where an IMP run stands after level `level` (0 = the dense training) finished: all `run_imp(resume=...)`
    needs to go on with level `level` + 1. masks: that level's; weights: the model's state_dict after its
    training (the magnitudes the next level prunes by); rewind_state / rewind_data_state: the rewind snapshot
    (SnapshotAtStep.state and .data_state); result: levels 0..level. As handed to `on_level_end` the tensors
    are the live model's: save or copy them there."""

    level: int
    masks: Masks
    weights: dict[str, torch.Tensor]
    rewind_state: dict[str, torch.Tensor]
    rewind_data_state: dict | None
    result: IMPResult


# train(model, masks, callbacks) trains `model` in place with the given extra callbacks (MaskKeeper,
# SnapshotAtStep) and returns a dict of metrics (e.g. {"test_acc": ...}).
TrainFn = Callable[[nn.Module, Masks, list], dict]


def run_imp(model: nn.Module, train: TrainFn, levels: int, fraction: float = 0.2, rewind_step: int = 0,
            include_head: bool = True, keep_masks: bool = False, continue_from_rewind: bool = False,
            resume: ImpProgress | None = None,
            on_level_end: Callable[[ImpProgress], None] | None = None) -> IMPResult:
    """Iterative magnitude pruning with rewinding: train dense (snapshotting the weights at
    `rewind_step`), then `levels` times: prune `fraction` of the remaining weights by global
    magnitude, rewind the kept weights to the snapshot, retrain with the masks held.

    continue_from_rewind: each retraining resumes at `rewind_step` (schedule and batch order of that
    step, via `StartAtStep`) and runs to the end; False retrains the whole schedule. The train fn's
    trainer must hand callbacks to shared.train.Trainer. Level l has sparsity 1 - (1 - fraction)^l.
    resume: the progress of an interrupted run (as `on_level_end` got it): its weights are loaded into
    `model` and the run goes on with the next level, as the uninterrupted one would. on_level_end: called
    with the progress after every finished level (to save it). Returns the metrics of each level's
    trained model.
    """
    if levels < 0:
        raise ValueError(f"levels must be >= 0, got {levels}")
    with_data = continue_from_rewind and rewind_step > 0
    if resume is None:
        result = IMPResult()
        masks = full_masks(model, include_head)
        snapshot = SnapshotAtStep(model, rewind_step, with_data=with_data)
        keeper = MaskKeeper(model, masks)
        metrics = train(model, masks, [keeper, snapshot])
        keeper.remove()
        if snapshot.state is None:
            raise ValueError(f"training ended before rewind_step={rewind_step}; no weights to rewind to")
        _add_level(result, masks, metrics, keep_masks)
        if on_level_end is not None:
            on_level_end(ImpProgress(0, masks, model.state_dict(), snapshot.state, snapshot.data_state, result))
        first = 1
    else:
        result = IMPResult(list(resume.result.sparsity), list(resume.result.metrics), list(resume.result.masks))
        masks = resume.masks
        model.load_state_dict(resume.weights)
        snapshot = SnapshotAtStep(model, rewind_step, with_data=with_data)
        snapshot.state, snapshot.data_state = resume.rewind_state, resume.rewind_data_state
        first = resume.level + 1
    for level in range(first, levels + 1):
        masks = global_magnitude_prune(model, masks, fraction)
        rewind(model, snapshot.state, masks)
        keeper = MaskKeeper(model, masks)
        metrics = train(model, masks, [keeper, StartAtStep(snapshot)] if continue_from_rewind else [keeper])
        keeper.remove()
        _add_level(result, masks, metrics, keep_masks)
        if on_level_end is not None:
            on_level_end(ImpProgress(level, masks, model.state_dict(), snapshot.state, snapshot.data_state, result))
    return result


def _add_level(result: IMPResult, masks: Masks, metrics: dict, keep_masks: bool) -> None:
    result.sparsity.append(sparsity(masks))
    result.metrics.append(metrics)
    if keep_masks:
        result.masks.append(masks)
