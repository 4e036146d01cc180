"""Schedules as pure functions of the step: the LR multiplier, and scalar schedules for other
quantities that change during training (masking rate, mixture weights).

`lr_multiplier(step, ...)` is the factor applied to the peak LR for the update at `step`
(0-based: step 0 is the first optimizer update). Warmup is linear, (step + 1) / warmup_steps, so
the first update never has LR 0. After warmup, with progress t = (step - warmup) / (max_steps -
warmup) in [0, 1):

    cosine    alpha_f + (1 - alpha_f) * (1 + cos(pi * t)) / 2
    linear    1 - (1 - alpha_f) * t
    constant  1, or with cooldown_steps c: 1 - (1 - alpha_f) * (step - (max_steps - c)) / c over the
              last c updates (warmup-stable-decay)
    inv_sqrt  max(alpha_f, sqrt(max(warmup, 1) / (step + 1)))

cosine and linear reach alpha_f at t = 1, i.e. at step max_steps, the LR left after the last
update (as in Composer, which names this final fraction alpha_f; MosaicML's LLM configs
typically use 0.1), so no update runs at LR 0.
"""
from __future__ import annotations

import math

import torch

from .config import SCHEDULES, TrainConfig

INTERPOLATIONS = ("constant", "linear", "cosine")


def lr_multiplier(step: int, max_steps: int, schedule: str = "cosine", warmup_steps: int = 0,
                  alpha_f: float = 0.0, cooldown_steps: int = 0) -> float:
    """Multiplier of the peak LR for the 0-based optimizer update `step`."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule={schedule!r} is not valid; choose one of {list(SCHEDULES)}")
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        start = max_steps - cooldown_steps
        if cooldown_steps <= 0 or step < start:
            return 1.0
        return 1.0 - (1.0 - alpha_f) * min(1.0, (step - start) / cooldown_steps)
    if schedule == "inv_sqrt":
        return max(alpha_f, math.sqrt(max(warmup_steps, 1) / (step + 1)))
    decay_steps = max_steps - warmup_steps
    t = 1.0 if decay_steps <= 0 else min(1.0, (step - warmup_steps) / decay_steps)
    if schedule == "linear":
        return 1.0 - (1.0 - alpha_f) * t
    return alpha_f + (1.0 - alpha_f) * 0.5 * (1.0 + math.cos(math.pi * t))


class LRMultiplier:
    """Picklable callable for torch.optim.lr_scheduler.LambdaLR (its state_dict stores __dict__)."""

    def __init__(self, max_steps: int, schedule: str, warmup_steps: int, alpha_f: float, cooldown_steps: int = 0):
        self.max_steps, self.schedule = max_steps, schedule
        self.warmup_steps, self.alpha_f, self.cooldown_steps = warmup_steps, alpha_f, cooldown_steps

    def __call__(self, step: int) -> float:
        # getattr: schedulers pickled before cooldowns existed resume without one
        return lr_multiplier(step, self.max_steps, self.schedule, self.warmup_steps, self.alpha_f,
                             getattr(self, "cooldown_steps", 0))


def build_lr_scheduler(optimizer: torch.optim.Optimizer,
                       config: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """LambdaLR that sets each group's lr to its initial lr times `lr_multiplier(step)`.

    Call `.step()` once after every optimizer update. It also records `initial_lr` in each param
    group, which the decoupled weight decay of shared.train.optim reads.
    """
    fn = LRMultiplier(config.max_steps, config.schedule, config.resolve_warmup_steps(),
                      config.alpha_f, config.cooldown_steps)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, fn)


def interpolate(start: float, end: float, progress: float, kind: str = "linear") -> float:
    """Value between `start` and `end` at `progress` in [0, 1] (clamped).

    For scalar schedules other than the LR, e.g. a masking rate going from 0.3 to 0.15:
    `interpolate(0.3, 0.15, step / max_steps, "linear")`. kind: constant (start throughout),
    linear, cosine (half-cosine from start to end).
    """
    if kind not in INTERPOLATIONS:
        raise ValueError(f"kind={kind!r} is not valid; choose one of {list(INTERPOLATIONS)}")
    t = min(1.0, max(0.0, progress))
    if kind == "constant":
        return start
    if kind == "linear":
        return start + (end - start) * t
    return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * t))
