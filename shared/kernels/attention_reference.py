"""Plain-PyTorch attention: the mask builder shared by the SDPA backend, and the reference.

The reference is the definition every fast path is tested against:
    out = softmax(q k^T * scale + alibi_bias + mask) v, computed in float32.
Layout: q (batch, heads, q_len, head_dim); k, v (batch, kv_heads, k_len, head_dim), heads a
multiple of kv_heads (grouped-query attention). Output (batch, heads, q_len, head_dim), q's dtype.
"""
from __future__ import annotations

import torch

from shared.kernels.alibi import alibi_bias
from shared.kernels.padding import varlen_to_padded


def allowed_mask(batch: int, q_len: int, k_len: int, device: torch.device, *, causal: bool,
                 doc_ids: torch.Tensor | None = None,
                 key_padding_mask: torch.Tensor | None = None) -> torch.Tensor | None:
    """Which (query, key) pairs may attend: (batch or 1, 1, q_len, k_len) bool, or None if all.

    causal: key j visible to query i iff j <= i + (k_len - q_len) (queries aligned to the end).
    doc_ids (batch, seq): same document only. key_padding_mask (batch, seq): True = real key.
    A padding query would see no key at all in some layouts (softmax of an empty row is NaN in
    some kernels), so padding queries are allowed their own position; callers zero their output.
    """
    mask = None
    if causal:
        q_pos = torch.arange(k_len - q_len, k_len, device=device)
        mask = (q_pos[:, None] >= torch.arange(k_len, device=device)[None, :])[None, None]
    if doc_ids is not None:
        same_doc = (doc_ids[:, :, None] == doc_ids[:, None, :])[:, None]
        mask = same_doc if mask is None else mask & same_doc
    if key_padding_mask is not None:
        keys = key_padding_mask[:, None, None, :].bool()
        mask = keys if mask is None else mask & keys
        self_pair = torch.eye(q_len, k_len, dtype=torch.bool, device=device)[None, None]
        mask = mask | (self_pair & ~key_padding_mask[:, None, :, None].bool())
    if mask is not None and mask.shape[0] != batch and mask.shape[0] != 1:
        raise ValueError(f"mask batch {mask.shape[0]} does not match batch {batch}")
    return mask


def zero_padding_queries(out: torch.Tensor, key_padding_mask: torch.Tensor | None) -> torch.Tensor:
    """out (batch, heads, seq, dim): zero the rows of padding tokens (the documented contract)."""
    if key_padding_mask is None:
        return out
    return out.masked_fill(~key_padding_mask[:, None, :, None].bool(), 0.0)


def reference_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool,
                        alibi_slopes: torch.Tensor | None = None, doc_ids: torch.Tensor | None = None,
                        key_padding_mask: torch.Tensor | None = None, dropout_p: float = 0.0,
                        scale: float | None = None) -> torch.Tensor:
    """softmax(q k^T * scale + alibi + mask) v in float32. Shapes: see module docstring."""
    batch, heads, q_len, head_dim = q.shape
    kv_heads, k_len = k.shape[1], k.shape[2]
    scale = head_dim ** -0.5 if scale is None else scale
    qf, kf, vf = q.float(), k.float(), v.float()
    if kv_heads != heads:
        kf = kf.repeat_interleave(heads // kv_heads, dim=1)
        vf = vf.repeat_interleave(heads // kv_heads, dim=1)
    scores = torch.matmul(qf, kf.transpose(-1, -2)) * scale
    if alibi_slopes is not None:
        scores = scores + alibi_bias(alibi_slopes, q_len, k_len)[None]
    mask = allowed_mask(batch, q_len, k_len, q.device, causal=causal, doc_ids=doc_ids,
                        key_padding_mask=key_padding_mask)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    if dropout_p > 0.0:
        probs = torch.nn.functional.dropout(probs, p=dropout_p)
    out = zero_padding_queries(torch.matmul(probs, vf), key_padding_mask)
    return out.to(q.dtype)


def reference_varlen_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor,
                               max_seqlen: int, *, causal: bool, alibi_slopes: torch.Tensor | None = None,
                               dropout_p: float = 0.0, scale: float | None = None) -> torch.Tensor:
    """Varlen reference: each sequence of (total, heads, head_dim) attended to on its own, in a loop."""
    outs = []
    bounds = cu_seqlens.tolist()
    for start, end in zip(bounds[:-1], bounds[1:]):
        seg = [t[start:end].transpose(0, 1)[None] for t in (q, k, v)]  # (1, heads, len, dim)
        out = reference_attention(*seg, causal=causal, alibi_slopes=alibi_slopes, dropout_p=dropout_p, scale=scale)
        outs.append(out[0].transpose(0, 1))
    return torch.cat(outs, dim=0) if outs else q.new_zeros(q.shape)


def padded_varlen(attn_fn, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor,
                  max_seqlen: int, **kwargs) -> torch.Tensor:
    """Run a padded-layout attention function on varlen inputs: pad, attend with a key mask, unpad."""
    padded = []
    for t in (q, k, v):
        x, mask, indices = varlen_to_padded(t, cu_seqlens, max_seqlen)
        padded.append(x.transpose(1, 2))  # (num_seqs, heads, max_seqlen, dim)
    out = attn_fn(*padded, key_padding_mask=mask, **kwargs)
    return out.transpose(1, 2).flatten(0, 1).index_select(0, indices)
