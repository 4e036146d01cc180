"""The accelerators a preflight sizes runs for: memory and dense bf16 peak FLOP/s, from the vendors' datasheets.

Peak FLOP/s are dense (no 2:4 sparsity) BF16 tensor-core numbers of the SXM parts. Memory is the
datasheet's GB read as 10^9 bytes (80 GB = 74.5 GiB), the conservative reading: CUDA reports about
79 GiB in total on an H100 80GB, part of which the CUDA context and NCCL take anyway.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GPU:
    """One card: ``memory_bytes`` of HBM, ``bf16_flops`` dense peak per second, ``source`` the datasheet."""
    name: str
    memory_bytes: float
    bf16_flops: float
    source: str

    @property
    def memory_gib(self) -> float:
        return self.memory_bytes / 2**30


GPUS: dict[str, GPU] = {
    "h100-80gb": GPU("h100-80gb", 80e9, 989e12,
                     "NVIDIA H100 Tensor Core GPU datasheet (SXM): 80 GB HBM3, BF16 1,979 TFLOPS with sparsity "
                     "= 989 TFLOPS dense"),
    "h200-141gb": GPU("h200-141gb", 141e9, 989e12,
                      "NVIDIA H200 Tensor Core GPU datasheet (SXM): 141 GB HBM3e, BF16 1,979 TFLOPS with "
                      "sparsity = 989 TFLOPS dense"),
    "a100-80gb": GPU("a100-80gb", 80e9, 312e12,
                     "NVIDIA A100 Tensor Core GPU datasheet (SXM): 80 GB HBM2e, BF16 312 TFLOPS dense"),
    "a100-40gb": GPU("a100-40gb", 40e9, 312e12,
                     "NVIDIA A100 Tensor Core GPU datasheet (SXM): 40 GB HBM2, BF16 312 TFLOPS dense"),
}


def gpu(name: str) -> GPU:
    """The catalogue entry ``name``; ValueError naming the known cards otherwise."""
    if name not in GPUS:
        raise ValueError(f"unknown gpu {name!r}; known: {', '.join(GPUS)}")
    return GPUS[name]


__all__ = ["GPU", "GPUS", "gpu"]
