"""Unpad / pad helpers for variable-length ("varlen") attention.

Varlen layout: all real tokens of a batch concatenated, ``(total_tokens, ...)``, with
``cu_seqlens`` (num_seqs + 1,) int32 holding the cumulative sequence lengths ``[0, l0, l0+l1, ...]``
(flash-attn's convention). Padded layout: ``(batch, seq, ...)`` with a bool mask, True = real token.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def cu_seqlens_from_lengths(lengths: torch.Tensor) -> torch.Tensor:
    """lengths (n,) -> cu_seqlens (n+1,) int32."""
    return F.pad(torch.cumsum(lengths, 0, dtype=torch.int32), (1, 0))


def unpad_input(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Drop padding tokens.

    x: (batch, seq, ...); mask: (batch, seq) bool, True = keep.
    Returns x_unpad (total, ...), indices (total,) into the flattened batch*seq axis,
    cu_seqlens (batch+1,) int32, max_seqlen (int). Rows of length 0 give empty segments.
    """
    lengths = mask.sum(dim=1, dtype=torch.int32)
    indices = torch.nonzero(mask.flatten(), as_tuple=False).flatten()
    x_unpad = x.flatten(0, 1).index_select(0, indices)
    return x_unpad, indices, cu_seqlens_from_lengths(lengths), int(lengths.max().item()) if lengths.numel() else 0


def pad_input(x_unpad: torch.Tensor, indices: torch.Tensor, batch: int, seq: int) -> torch.Tensor:
    """Inverse of unpad_input: (total, ...) -> (batch, seq, ...), zeros at padding positions."""
    out = x_unpad.new_zeros((batch * seq, *x_unpad.shape[1:]))
    out = out.index_copy(0, indices, x_unpad)
    return out.view(batch, seq, *x_unpad.shape[1:])


def segments_to_varlen(mask: torch.Tensor | None, doc_ids: torch.Tensor | None, batch: int, seq: int,
                       device: torch.device) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Cut a padded batch into varlen segments: one per (row, document) run of real tokens.

    mask: (batch, seq) bool or None (all real); doc_ids: (batch, seq) int or None (one doc per row).
    A new segment starts at each row start and wherever doc_ids changes from the previous token,
    so documents must be contiguous runs within a row (as packing produces).
    Returns indices (total,) into batch*seq, cu_seqlens (num_segments+1,) int32, max_seqlen.
    """
    starts = torch.zeros(batch, seq, dtype=torch.bool, device=device)
    starts[:, 0] = True
    if doc_ids is not None:
        starts[:, 1:] |= doc_ids[:, 1:] != doc_ids[:, :-1]
    keep = torch.ones(batch, seq, dtype=torch.bool, device=device) if mask is None else mask.bool()
    flat_keep = keep.flatten()
    indices = torch.nonzero(flat_keep, as_tuple=False).flatten()
    # segment id of each token = number of starts up to and including it; renumber kept segments densely
    seg = torch.cumsum(starts.flatten().to(torch.int64), 0)[indices]
    _, lengths = torch.unique_consecutive(seg, return_counts=True)
    max_seqlen = int(lengths.max().item()) if lengths.numel() else 0
    return indices, cu_seqlens_from_lengths(lengths), max_seqlen


def varlen_to_padded(x: torch.Tensor, cu_seqlens: torch.Tensor,
                     max_seqlen: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, ...) -> (num_seqs, max_seqlen, ...) padded, its bool mask, and the token indices."""
    lengths = (cu_seqlens[1:] - cu_seqlens[:-1]).long()
    n = lengths.numel()
    mask = torch.arange(max_seqlen, device=x.device)[None, :] < lengths[:, None]
    indices = torch.nonzero(mask.flatten(), as_tuple=False).flatten()
    return pad_input(x, indices, n, max_seqlen), mask, indices
