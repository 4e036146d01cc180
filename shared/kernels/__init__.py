"""Kernels shared by every model: attention dispatch, ALiBi, norms, unpad/pad, fused LM-head loss.

Every fast path (flash-attn, FlexAttention, SDPA) sits beside a plain-PyTorch reference it is
tested against (tests/test_kernels_attention.py).
"""
from shared.kernels.alibi import alibi_bias, alibi_slopes
from shared.kernels.attention import (BACKENDS, BackendUnavailable, attention, available_backends, explain_backend,
                                      varlen_attention)
from shared.kernels.linear_cross_entropy import linear_cross_entropy
from shared.kernels.norms import LayerNorm, RMSNorm, build_norm
from shared.kernels.padding import pad_input, unpad_input

__all__ = ["BACKENDS", "BackendUnavailable", "LayerNorm", "RMSNorm", "alibi_bias", "alibi_slopes", "attention",
           "available_backends", "build_norm", "explain_backend", "linear_cross_entropy", "pad_input", "unpad_input",
           "varlen_attention"]
