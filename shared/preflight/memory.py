"""Peak memory of one training rank: weights, gradients, optimizer states, activations and buffers.

Storage as the shared trainer keeps it (shared.train): parameters in fp32 whatever the precision
(bf16 and amp_fp16 autocast the compute; these are the fp32 master weights), fp32 gradients of the
trainable ones, optimizer states in fp32 (AdamW m and v: 8 bytes a parameter; LionW and SGD momentum: 4).
Frozen parameters take ``frozen_param_bytes`` each (4, or 2 for a base loaded in bf16).

Parallelism over ``world`` ranks:
- "none" / "ddp": everything replicated. DDP adds its gradient buckets (a second fp32 copy of the
  trainable gradients: ``gradient_as_bucket_view`` is off by default); bf16 / fp16 autocast caches a
  16-bit copy of every weight it casts for the forward and backward (2 bytes a parameter).
- "fsdp" (FSDP2 / ZeRO-3): weights, gradients and optimizer states sharded over the world; each
  rank also holds the unsharded parameters of the block in use and of the one prefetched
  (2 x the largest block, in the compute dtype) and that block's unsharded fp32 gradient before
  its reduce-scatter.
- "fsdp_grad_op" (ZeRO-2, ``reshard_after_forward=False``): weights, gradients and optimizer states
  sharded as under "fsdp", but every block gathered in the forward stays unsharded until its
  backward, so at the peak (the end of the forward) each rank holds all parameters unsharded, in the
  compute dtype, plus the unsharded fp32 gradient of the block being reduce-scattered.

Activations: micro_batch_size x the model's bytes per sample (shared.preflight.estimate), 2 bytes
an element under bf16 or fp16 autocast (Korthikanti et al. 2022's 16-bit convention), 4 in fp32.
"""
from __future__ import annotations

from dataclasses import dataclass

from shared.train.config import SHARDED_PARALLELISMS

from .plan import TrainingRunPlan

GIB = 2**30
SIXTEEN_BIT = ("bf16", "amp_fp16")      # autocast precisions: 2-byte activations and weight copies
SHARDED = SHARDED_PARALLELISMS                      # the parallelisms that shard (shared.train.config)


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
    return 2 if precision in SIXTEEN_BIT else 4


def memory_per_gpu(run: TrainingRunPlan, world_size: int, activation_checkpointing: bool) -> MemoryBreakdown:
    """The peak bytes one rank of ``run`` holds under ``world_size`` ranks (module docstring)."""
    cost = run.model
    trainable, frozen = cost.trainable_params, cost.params - cost.trainable_params
    weights = 4.0 * trainable + run.frozen_param_bytes * frozen
    gradients = 4.0 * trainable
    optimizer = float(run.optimizer.state_bytes_per_param * trainable)
    compute_bytes = activation_bytes_per_element(run.precision)
    activations = run.micro_batch_size * cost.activation_bytes(compute_bytes, activation_checkpointing)
    sharded = run.parallelism in SHARDED and world_size > 1
    if sharded:
        weights, gradients, optimizer = weights / world_size, gradients / world_size, optimizer / world_size
        gathered = cost.params if run.parallelism == "fsdp_grad_op" else 2.0 * cost.block_params
        buffers = compute_bytes * gathered + 4.0 * cost.block_params
    else:
        buffers = 2.0 * cost.params if run.precision in SIXTEEN_BIT else 0.0   # autocast's 16-bit weight copies
        if run.parallelism == "ddp" and world_size > 1:
            buffers += 4.0 * trainable                                       # DDP gradient buckets
    return MemoryBreakdown(weights, gradients, optimizer, activations, buffers)


__all__ = ["GIB", "MemoryBreakdown", "SHARDED", "SIXTEEN_BIT", "activation_bytes_per_element", "memory_per_gpu"]
