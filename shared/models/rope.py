"""Rotary position embeddings (Su et al. 2021, RoFormer) in the "rotate half" layout of
transformers' Llama: head_dim is split into two halves (x1, x2) that rotate as pairs
(x1[i], x2[i]) at frequency theta ** (-2i / head_dim). Using the same layout as transformers
means Llama weights need no permutation on import/export.
"""
from __future__ import annotations

import torch


def rope_tables(head_dim: int, max_len: int, theta: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin tables, each (max_len, head_dim // 2) float32 (computed as transformers does)."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    freqs = torch.arange(max_len, dtype=torch.float32)[:, None] * inv_freq[None, :]
    return freqs.cos(), freqs.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x (batch, seq, heads, head_dim) by cos/sin of shape (seq, head_dim/2) or
    (batch, seq, head_dim/2) (per-token positions, e.g. restarting at document starts)."""
    x1, x2 = x.chunk(2, dim=-1)
    cos, sin = cos.unsqueeze(-2), sin.unsqueeze(-2)  # broadcast over heads
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


def positions_from_doc_ids(doc_ids: torch.Tensor) -> torch.Tensor:
    """(batch, seq) document ids -> (batch, seq) long positions restarting at 0 at each document
    start (the row start and every token whose id differs from the previous token's)."""
    batch, seq = doc_ids.shape
    idx = torch.arange(seq, device=doc_ids.device).expand(batch, seq)
    starts = torch.ones(batch, seq, dtype=torch.bool, device=doc_ids.device)
    starts[:, 1:] = doc_ids[:, 1:] != doc_ids[:, :-1]
    start_idx = torch.where(starts, idx, torch.zeros_like(idx)).cummax(dim=1).values
    return idx - start_idx
