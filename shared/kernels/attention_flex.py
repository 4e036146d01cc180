"""PyTorch FlexAttention backend (``torch.nn.attention.flex_attention``).

ALiBi is a ``score_mod``; causal, document and padding masks are one ``mask_mod`` turned into a
block-sparse ``BlockMask``, so fully masked blocks (other documents, the future) are skipped.

What torch 2.13 does on CPU (measured on this machine): the forward runs, eagerly (an unfused path
that materialises the score matrix, with a warning; ~5x slower than SDPA with a mask) or under
``torch.compile`` (faster than SDPA, but 8-14 s of compile for every new shape, which generation
with a growing KV cache would hit at each step); the backward raises ``NotImplementedError:
FlexAttention does not support backward on CPU``. So on CPU this backend serves only no-grad calls,
eagerly (tests, debugging); ``auto`` never picks it there (see ``attention.py``). On CUDA the compiled kernel
is used. Padding queries see no key at all; FlexAttention returns 0 for such rows.
"""
from __future__ import annotations

import functools
import warnings

import torch

try:
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
except ImportError:  # torch < 2.5
    create_block_mask = flex_attention = None


def flex_unavailable_reason(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout_p: float) -> str | None:
    if flex_attention is None:
        return f"torch {torch.__version__} has no torch.nn.attention.flex_attention (needs torch >= 2.5)"
    if dropout_p > 0.0:
        return "FlexAttention has no attention dropout (dropout_p > 0)"
    if q.device.type == "cpu" and torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v)):
        return (f"FlexAttention in torch {torch.__version__} has no CPU backward "
                "('FlexAttention does not support backward on CPU'); use it under torch.no_grad() on CPU")
    return None


@functools.cache
def _compiled_flex():
    return torch.compile(flex_attention, dynamic=False)


def _mask_mod(causal: bool, offset: int, doc_ids: torch.Tensor | None, key_padding_mask: torch.Tensor | None):
    """One mask_mod(b, h, q_idx, kv_idx) -> bool for every constraint that is on, or None."""
    mods = []
    if causal:
        mods.append(lambda b, h, q_idx, kv_idx: q_idx + offset >= kv_idx)
    if doc_ids is not None:
        mods.append(lambda b, h, q_idx, kv_idx: doc_ids[b, q_idx] == doc_ids[b, kv_idx])
    if key_padding_mask is not None:
        kpm = key_padding_mask.bool()
        mods.append(lambda b, h, q_idx, kv_idx: kpm[b, kv_idx] & kpm[b, q_idx])
    if not mods:
        return None

    def mask_mod(b, h, q_idx, kv_idx):
        allowed = mods[0](b, h, q_idx, kv_idx)
        for mod in mods[1:]:
            allowed = allowed & mod(b, h, q_idx, kv_idx)
        return allowed
    return mask_mod


@functools.lru_cache(maxsize=16)
def _causal_block_mask(q_len: int, k_len: int, device: str):
    offset = k_len - q_len
    return create_block_mask(lambda b, h, q_idx, kv_idx: q_idx + offset >= kv_idx, None, None, q_len, k_len,
                             device=device)


def flex_attention_padded(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool,
                          alibi_slopes: torch.Tensor | None = None, doc_ids: torch.Tensor | None = None,
                          key_padding_mask: torch.Tensor | None = None, dropout_p: float = 0.0,
                          scale: float | None = None) -> torch.Tensor:
    """q (B, H, Sq, D); k, v (B, Hkv, Sk, D) -> (B, H, Sq, D)."""
    batch, heads, q_len, _ = q.shape
    k_len = k.shape[2]
    offset = k_len - q_len
    if doc_ids is None and key_padding_mask is None:
        block_mask = _causal_block_mask(q_len, k_len, str(q.device)) if causal else None
    else:
        block_mask = create_block_mask(_mask_mod(causal, offset, doc_ids, key_padding_mask), batch, None,
                                       q_len, k_len, device=q.device)
    score_mod = None
    if alibi_slopes is not None:
        slopes = alibi_slopes.to(device=q.device, dtype=torch.float32)

        def score_mod(score, b, h, q_idx, kv_idx):
            return score - slopes[h] * (q_idx + offset - kv_idx).abs()

    kwargs = dict(score_mod=score_mod, block_mask=block_mask, scale=scale, enable_gqa=k.shape[1] != heads)
    if q.device.type == "cpu":
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="flex_attention called without torch.compile")
            return flex_attention(q, k, v, **kwargs)
    return _compiled_flex()(q, k, v, **kwargs)


def flex_varlen_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor,
                          max_seqlen: int, **kwargs) -> torch.Tensor:
    """(total, H, D) varlen as one row of documents: a block-diagonal mask, no padding."""
    total = q.shape[0]
    lengths = (cu_seqlens[1:] - cu_seqlens[:-1]).long()
    seq_ids = torch.repeat_interleave(torch.arange(lengths.numel(), device=q.device), lengths)[None]
    out = flex_attention_padded(*(t.transpose(0, 1)[None] for t in (q, k, v)), doc_ids=seq_ids, **kwargs)
    assert out.shape[2] == total
    return out[0].transpose(0, 1)
