"""PyTorch ``F.scaled_dot_product_attention`` backend.

Fast path: no ALiBi, no documents, no padding -> ``is_causal=True`` (or no mask), no mask tensor is
built and PyTorch picks its fused kernel (flash on CUDA, the flash-style CPU kernel on CPU).
Otherwise an explicit mask is passed: a bool mask (batch, 1, q, k) when only masking is needed, an
additive float mask (batch, heads, q, k) = ALiBi bias with -inf at masked pairs when ALiBi is on.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from shared.kernels.alibi import alibi_bias
from shared.kernels.attention_reference import allowed_mask, padded_varlen, zero_padding_queries


def sdpa_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool,
                   alibi_slopes: torch.Tensor | None = None, doc_ids: torch.Tensor | None = None,
                   key_padding_mask: torch.Tensor | None = None, dropout_p: float = 0.0,
                   scale: float | None = None) -> torch.Tensor:
    """q (B, H, Sq, D); k, v (B, Hkv, Sk, D) -> (B, H, Sq, D)."""
    batch, heads, q_len, _ = q.shape
    k_len = k.shape[2]
    gqa = k.shape[1] != heads
    if alibi_slopes is None and doc_ids is None and key_padding_mask is None:
        if not causal or q_len == 1:  # one new query sees the whole cache
            return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, scale=scale, enable_gqa=gqa)
        if q_len == k_len:
            return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True, scale=scale,
                                                  enable_gqa=gqa)
    mask = allowed_mask(batch, q_len, k_len, q.device, causal=causal, doc_ids=doc_ids,
                        key_padding_mask=key_padding_mask)
    if alibi_slopes is not None:
        bias = alibi_bias(alibi_slopes, q_len, k_len)[None].to(q.dtype)  # (1, H, Sq, Sk)
        mask = bias if mask is None else bias.masked_fill(~mask, float("-inf"))
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, scale=scale, enable_gqa=gqa)
    return zero_padding_queries(out, key_padding_mask)


def sdpa_varlen_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor,
                          max_seqlen: int, **kwargs) -> torch.Tensor:
    """(total, H, D) varlen via padding to (num_seqs, max_seqlen) and a key mask."""
    return padded_varlen(sdpa_attention, q, k, v, cu_seqlens, max_seqlen, **kwargs)
