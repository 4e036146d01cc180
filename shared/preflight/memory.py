"""Peak memory of one training rank: weights, gradients, optimizer states, activations and buffers.

Storage as the shared trainer keeps it (shared.train): parameters in fp32 whatever the precision
(bf16 autocasts the compute; these are the fp32 master weights), fp32 gradients of the trainable
ones, optimizer states in fp32 (AdamW m and v: 8 bytes a parameter; LionW and SGD momentum: 4).
Frozen parameters take ``frozen_param_bytes`` each (4, or 2 for a base loaded in bf16).

Parallelism over ``world`` ranks:
- "none" / "ddp": everything replicated. DDP adds its gradient buckets (a second fp32 copy of the
  trainable gradients: ``gradient_as_bucket_view`` is off by default); bf16 autocast caches a bf16
  copy of every weight it casts for the forward and backward (2 bytes a parameter).
- "fsdp" (FSDP2 / ZeRO-3): weights, gradients and optimizer states sharded over the world; each
  rank also holds the unsharded parameters of the block in use and of the one prefetched
  (2 x the largest block, in the compute dtype) and that block's unsharded fp32 gradient before
  its reduce-scatter.

Activations: micro_batch_size x the model's bytes per sample (shared.preflight.estimate), 2 bytes
an element under bf16 autocast (Korthikanti et al. 2022's 16-bit convention), 4 in fp32.
"""
from __future__ import annotations

from dataclasses import dataclass

from .plan import TrainingRunPlan

GIB = 2**30


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes per GPU at the step's peak (the end of the forward / start of the backward)."""
    weights: float
    gradients: float
    optimizer_states: float
    activations: float
    buffers: float

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer_states + self.activations + self.buffers

    def gib(self) -> dict[str, float]:
        parts = {"weights": self.weights, "gradients": self.gradients, "optimizer_states": self.optimizer_states,
                 "activations": self.activations, "buffers": self.buffers, "total": self.total}
        return {k: round(v / GIB, 3) for k, v in parts.items()}


def activation_bytes_per_element(precision: str) -> int:
    return 2 if precision == "bf16" else 4


def memory_per_gpu(run: TrainingRunPlan, world_size: int, activation_checkpointing: bool) -> MemoryBreakdown:
    """The peak bytes one rank of ``run`` holds under ``world_size`` ranks (module docstring)."""
    cost = run.model
    trainable, frozen = cost.trainable_params, cost.params - cost.trainable_params
    weights = 4.0 * trainable + run.frozen_param_bytes * frozen
    gradients = 4.0 * trainable
    optimizer = float(run.optimizer.state_bytes_per_param * trainable)
    compute_bytes = activation_bytes_per_element(run.precision)
    activations = run.micro_batch_size * cost.activation_bytes(compute_bytes, activation_checkpointing)
    sharded = run.parallelism == "fsdp" and world_size > 1
    if sharded:
        weights, gradients, optimizer = weights / world_size, gradients / world_size, optimizer / world_size
        buffers = 2.0 * compute_bytes * cost.block_params + 4.0 * cost.block_params
    else:
        buffers = 2.0 * cost.params if run.precision == "bf16" else 0.0   # autocast's bf16 weight copies
        if run.parallelism == "ddp" and world_size > 1:
            buffers += 4.0 * trainable                                       # DDP gradient buckets
    return MemoryBreakdown(weights, gradients, optimizer, activations, buffers)


__all__ = ["GIB", "MemoryBreakdown", "activation_bytes_per_element", "memory_per_gpu"]
