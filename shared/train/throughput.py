"""Throughput and model FLOPs utilization (MFU).

    MFU = flops_per_token * tokens_per_s / (peak_flops_per_device * world_size)

`flops_per_token` is the model's training FLOPs per token (forward + backward, about 6 * N for N
non-embedding parameters plus the attention term; the model reports it). `tokens_per_s` is the
global rate over all ranks.

Peak dense tensor-core FLOP/s from NVIDIA's data sheets (H100 SXM5 / H200 SXM: 989.4 TFLOPS BF16,
494.7 TF32, 66.9 FP32; H100 PCIe: 756 BF16, 378 TF32, 51.2 FP32; A100: 312 BF16, 156 TF32,
19.5 FP32). Unknown devices and CPUs have no entry: MFU is then None (null in the JSONL).
"""
from __future__ import annotations

import torch

# device key -> precision -> peak dense FLOP/s per device
PEAK_FLOPS: dict[str, dict[str, float]] = {
    "H100-SXM": {"bf16": 989.4e12, "tf32": 494.7e12, "fp32": 66.9e12},
    "H100-PCIe": {"bf16": 756.0e12, "tf32": 378.0e12, "fp32": 51.2e12},
    "H200": {"bf16": 989.4e12, "tf32": 494.7e12, "fp32": 66.9e12},
    "A100": {"bf16": 312.0e12, "tf32": 156.0e12, "fp32": 19.5e12},
}


def device_key(device_name: str) -> str | None:
    """Key of PEAK_FLOPS for a CUDA device name such as 'NVIDIA H100 80GB HBM3', else None."""
    name = device_name.upper()
    if "H200" in name:
        return "H200"
    if "H100" in name:
        if "PCIE" in name:
            return "H100-PCIe"
        if "NVL" in name:
            return None  # H100 NVL has its own (lower) peak; not tabulated
        return "H100-SXM"
    if "A100" in name:
        return "A100"
    return None


def peak_flops(device: torch.device | str, precision: str) -> float | None:
    """Peak dense FLOP/s of one device for the training precision ("bf16" or "fp32"), or None.

    fp32 training on Ampere/Hopper uses TF32 tensor cores when torch allows TF32 matmuls
    (torch.backends.cuda.matmul.allow_tf32); the peak follows that setting.
    """
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    key = device_key(torch.cuda.get_device_name(device))
    if key is None:
        return None
    if precision == "bf16":
        return PEAK_FLOPS[key]["bf16"]
    tf32 = torch.backends.cuda.matmul.allow_tf32 or torch.get_float32_matmul_precision() != "highest"
    return PEAK_FLOPS[key]["tf32" if tf32 else "fp32"]


def mfu(flops_per_token: float | None, tokens_per_s: float, peak: float | None,
        world_size: int = 1) -> float | None:
    """Model FLOPs utilization in [0, 1]; None when the model FLOPs or the device peak are unknown."""
    if flops_per_token is None or peak is None or peak <= 0:
        return None
    return flops_per_token * tokens_per_s / (peak * world_size)


def model_flops_per_token(model: torch.nn.Module, override: float | None = None) -> float | None:
    """Training FLOPs per token reported by the model: the attribute or zero-argument method
    `flops_per_token` (on the model or, if wrapped by DDP / torch.compile, its inner module)."""
    if override is not None:
        return float(override)
    for m in (model, getattr(model, "module", None), getattr(model, "_orig_mod", None)):
        value = getattr(m, "flops_per_token", None) if m is not None else None
        if value is not None:
            return float(value() if callable(value) else value)
    return None
