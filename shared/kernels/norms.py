"""LayerNorm and RMSNorm with an optional low-precision mode.

Default (``low_precision=False``): the statistics and the affine transform are computed in float32
and the result is cast back to the input dtype. This is what PyTorch's autocast does for
``layer_norm`` and what Llama's RMSNorm does by hand: it is the numerically safe choice.

``low_precision=True`` (MosaicBERT's "low precision LayerNorm", Portes et al. 2023): the norm is
computed in the *autocast* dtype when autocast is active (bf16 / fp16 on GPU), else in the input's
own dtype, without any upcast. Input, weight and bias are cast to that dtype and autocast is turned
off around the kernel so it cannot upcast behind our back. The output stays in the low dtype. This
halves the memory traffic of the norm (a memory-bound op) on GPU; on a float32 CPU run both modes
compute exactly the same thing.

For models built elsewhere (diffusers, transformers), ``use_low_precision_norms(model)`` switches
every ``nn.GroupNorm`` / ``nn.LayerNorm`` in place to ``LowPrecisionGroupNorm`` /
``LowPrecisionLayerNorm``: the same low-precision rule under autocast, the plain module outside it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def autocast_dtype(x: torch.Tensor) -> torch.dtype | None:
    """The autocast dtype active for ``x``'s device type, or None outside autocast."""
    if torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return None


def _low_precision_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype a low-precision norm computes in: the autocast dtype, else the input's own."""
    return autocast_dtype(x) or x.dtype


def _cast(t: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    return None if t is None else t.to(dtype)


class LayerNorm(nn.Module):
    """LayerNorm over the last dim. x: (..., dim) -> (..., dim)."""

    def __init__(self, dim: int, eps: float = 1e-5, bias: bool = True, low_precision: bool = False):
        super().__init__()
        self.dim, self.eps, self.low_precision = dim, eps, low_precision
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., dim) -> (..., dim) in x's dtype; computed in float32, or in the autocast / input
        dtype when low_precision."""
        if self.low_precision:
            dtype = _low_precision_dtype(x)
            with torch.autocast(x.device.type, enabled=False):
                return F.layer_norm(x.to(dtype), (self.dim,), _cast(self.weight, dtype),
                                    _cast(self.bias, dtype), self.eps)
        with torch.autocast(x.device.type, enabled=False):
            y = F.layer_norm(x.float(), (self.dim,), self.weight.float(), _cast(self.bias, torch.float32), self.eps)
        return y.to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}, bias={self.bias is not None}, low_precision={self.low_precision}"


class RMSNorm(nn.Module):
    """RMSNorm (Zhang & Sennrich 2019) over the last dim: x / sqrt(mean(x^2) + eps) * weight.

    x: (..., dim) -> (..., dim). Matches transformers' LlamaRMSNorm in float32.
    """

    def __init__(self, dim: int, eps: float = 1e-5, low_precision: bool = False):
        super().__init__()
        self.dim, self.eps, self.low_precision = dim, eps, low_precision
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., dim) -> (..., dim) in x's dtype; computed in float32, or in the autocast / input
        dtype when low_precision."""
        if self.low_precision:
            dtype = _low_precision_dtype(x)
            with torch.autocast(x.device.type, enabled=False):
                return F.rms_norm(x.to(dtype), (self.dim,), self.weight.to(dtype), self.eps)
        with torch.autocast(x.device.type, enabled=False):
            y = F.rms_norm(x.float(), (self.dim,), self.weight.float(), self.eps)
        return y.to(x.dtype)

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}, low_precision={self.low_precision}"


def build_norm(kind: str, dim: int, eps: float, bias: bool = True, low_precision: bool = False) -> nn.Module:
    """``kind`` is "layernorm" or "rmsnorm" (RMSNorm has no bias)."""
    if kind == "layernorm":
        return LayerNorm(dim, eps=eps, bias=bias, low_precision=low_precision)
    if kind == "rmsnorm":
        return RMSNorm(dim, eps=eps, low_precision=low_precision)
    raise ValueError(f"unknown norm {kind!r}; valid choices: 'layernorm', 'rmsnorm'")


# ---- low-precision variants of torch's own norm modules (for models built by other libraries) -------

class LowPrecisionGroupNorm(nn.GroupNorm):
    """GroupNorm in the autocast dtype (no fp32 upcast); the plain GroupNorm outside autocast.

    x: (B, C, *) -> (B, C, *), in the autocast dtype under autocast.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, *) -> (B, C, *)."""
        dtype = autocast_dtype(x)
        if dtype is None:
            return super().forward(x)
        with torch.autocast(x.device.type, enabled=False):
            return F.group_norm(x.to(dtype), self.num_groups, _cast(self.weight, dtype), _cast(self.bias, dtype),
                                self.eps)


class LowPrecisionLayerNorm(nn.LayerNorm):
    """LayerNorm in the autocast dtype (no fp32 upcast); the plain LayerNorm outside autocast.

    x: (..., *normalized_shape) -> same shape, in the autocast dtype under autocast.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., *normalized_shape) -> the same shape."""
        dtype = autocast_dtype(x)
        if dtype is None:
            return super().forward(x)
        with torch.autocast(x.device.type, enabled=False):
            return F.layer_norm(x.to(dtype), self.normalized_shape, _cast(self.weight, dtype),
                                _cast(self.bias, dtype), self.eps)


def use_low_precision_norms(model: nn.Module, enabled: bool = True) -> int:
    """Switch every nn.GroupNorm / nn.LayerNorm of ``model`` to (or back from) its low-precision
    subclass, in place and keeping the parameters; returns how many modules were switched."""
    swaps = {nn.GroupNorm: LowPrecisionGroupNorm, nn.LayerNorm: LowPrecisionLayerNorm}
    table = swaps if enabled else {v: k for k, v in swaps.items()}
    n = 0
    for module in model.modules():
        if type(module) in table:
            module.__class__ = table[type(module)]
            n += 1
    return n
