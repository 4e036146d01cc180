"""Optimizers: LionW (written here) and AdamW (torch's), both with decoupled weight decay.

LionW follows Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms", Algorithm 2:

    c_t = beta1 * m_{t-1} + (1 - beta1) * g_t
    theta_t = theta_{t-1} - lr_t * (sign(c_t) + wd * theta_{t-1})
    m_t = beta2 * m_{t-1} + (1 - beta2) * g_t

The paper's defaults are betas (0.9, 0.99), with an lr 3-10x smaller and a wd 3-10x larger than
AdamW's.

Weight decay scaling. Both optimizers decay the weights by lr_t * wd per step, as torch.optim.AdamW
and the Lion paper do. `build_optimizer` with `weight_decay_scaling="schedule"` stores
wd / lr_peak in the param groups instead, so the per-step decay is wd * lr_t / lr_peak: it follows
the schedule but not the size of the LR (Loshchilov & Hutter 2019; MosaicML Composer's
DecoupledAdamW and DecoupledLionW, whose configs give wd values like 1e-5 in this convention).
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from .config import TrainConfig


class LionW(torch.optim.Optimizer):
    """Lion with decoupled weight decay: p <- p * (1 - lr * wd) - lr * sign(beta1 m + (1-beta1) g).

    State per parameter: `exp_avg` (the momentum m, same shape and dtype as the parameter).
    """

    def __init__(self, params: Iterable, lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.99),
                 weight_decay: float = 0.0):
        if lr < 0.0:
            raise ValueError(f"lr must be >= 0, got {lr}")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        if weight_decay < 0.0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, wd = group["lr"], group["weight_decay"]
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["exp_avg"] = torch.zeros_like(p)
                m = state["exp_avg"]
                update = m.lerp(p.grad, 1.0 - beta1).sign_()
                if wd != 0.0:
                    p.mul_(1.0 - lr * wd)
                p.add_(update, alpha=-lr)
                m.lerp_(p.grad, 1.0 - beta2)
        return loss


def param_groups(model: nn.Module, weight_decay: float,
                 decay_norm_and_bias: bool = False) -> list[dict]:
    """Two groups of the trainable parameters: matrices (decayed) and vectors (biases, norm
    gains; decayed only if `decay_norm_and_bias`). Frozen parameters are left out."""
    decay, no_decay = [], []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        (decay if p.ndim >= 2 or decay_norm_and_bias else no_decay).append(p)
    if not decay and not no_decay:
        raise ValueError("the model has no trainable parameters (all requires_grad=False)")
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return [g for g in groups if g["params"]]


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer named by config.optimizer over `param_groups(model, ...)`.

    Build it after parallelism is applied (FSDP2 replaces parameters with sharded DTensors).
    """
    wd = config.weight_decay
    if config.weight_decay_scaling == "schedule" and wd > 0:
        if config.lr == 0:
            raise ValueError("weight_decay_scaling='schedule' needs lr > 0")
        wd = wd / config.lr  # per-step decay lr_t * wd / lr = wd * lr_t / lr_peak
    groups = param_groups(model, wd, config.decay_norm_and_bias)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, eps=config.eps,
                                 weight_decay=wd)
    if config.optimizer == "lionw":
        return LionW(groups, lr=config.lr, betas=config.betas, weight_decay=wd)
    raise ValueError(f"optimizer={config.optimizer!r} is not valid; choose one of ['adamw', 'lionw']")
