"""flash-attn 2 backend (Dao-AILab/flash-attention), optional: ``pip install flash-attn`` on CUDA only.

flash-attn wants (batch, seq, heads, head_dim) and fp16/bf16; our (batch, heads, seq, head_dim)
tensors are passed as transposed views (no copy). ALiBi goes through its ``alibi_slopes`` argument,
whose bias ``-slope * |i + k_len - q_len - j|`` is exactly our convention (see ``alibi.py``).
Documents and padding are handled the flash-attn way: the batch is cut into varlen segments (one per
row and document run, padding dropped), run through ``flash_attn_varlen_func`` and scattered back,
with zeros at padding positions.
"""
from __future__ import annotations

import torch

from shared.kernels.padding import pad_input, segments_to_varlen

try:
    from flash_attn import flash_attn_func, flash_attn_varlen_func
except ImportError:  # not installed: every caller falls back (CPU machines, CI)
    flash_attn_func = flash_attn_varlen_func = None


def flash_unavailable_reason(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout_p: float) -> str | None:
    if flash_attn_func is None:
        return "flash-attn is not installed (GPU extra: pip install flash-attn)"
    if q.device.type != "cuda":
        return f"flash-attn needs CUDA tensors, got device {q.device.type!r}"
    if q.dtype not in (torch.float16, torch.bfloat16) or k.dtype != q.dtype or v.dtype != q.dtype:
        return f"flash-attn needs fp16/bf16 q, k, v (got {q.dtype}); run under torch.autocast"
    head_dim = q.shape[-1]
    if head_dim > 256 or head_dim % 8:
        return f"flash-attn needs head_dim <= 256 and a multiple of 8, got {head_dim}"
    return None


def _slopes(alibi_slopes: torch.Tensor | None, device: torch.device) -> torch.Tensor | None:
    return None if alibi_slopes is None else alibi_slopes.to(device=device, dtype=torch.float32)


def flash_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool,
                    alibi_slopes: torch.Tensor | None = None, doc_ids: torch.Tensor | None = None,
                    key_padding_mask: torch.Tensor | None = None, dropout_p: float = 0.0,
                    scale: float | None = None) -> torch.Tensor:
    """q (B, H, Sq, D); k, v (B, Hkv, Sk, D) -> (B, H, Sq, D)."""
    qt, kt, vt = (t.transpose(1, 2) for t in (q, k, v))  # (B, S, H, D) views
    slopes = _slopes(alibi_slopes, q.device)
    if doc_ids is None and key_padding_mask is None:
        out = flash_attn_func(qt, kt, vt, dropout_p=dropout_p, softmax_scale=scale, causal=causal,
                              alibi_slopes=slopes)
        return out.transpose(1, 2)
    batch, seq = q.shape[0], q.shape[2]
    indices, cu_seqlens, max_seqlen = segments_to_varlen(key_padding_mask, doc_ids, batch, seq, q.device)
    unpadded = [t.flatten(0, 1).index_select(0, indices) for t in (qt, kt, vt)]
    out = flash_attn_varlen_func(*unpadded, cu_seqlens, cu_seqlens, max_seqlen, max_seqlen, dropout_p=dropout_p,
                                 softmax_scale=scale, causal=causal, alibi_slopes=slopes)
    return pad_input(out, indices, batch, seq).transpose(1, 2)


def flash_varlen_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor,
                           max_seqlen: int, *, causal: bool, alibi_slopes: torch.Tensor | None = None,
                           dropout_p: float = 0.0, scale: float | None = None) -> torch.Tensor:
    """(total, H, D) with cu_seqlens (n+1,) int32 -> (total, H, D)."""
    return flash_attn_varlen_func(q, k, v, cu_seqlens.to(torch.int32), cu_seqlens.to(torch.int32), max_seqlen,
                                  max_seqlen, dropout_p=dropout_p, softmax_scale=scale, causal=causal,
                                  alibi_slopes=_slopes(alibi_slopes, q.device))
