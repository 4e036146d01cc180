"""ALiBi: attention with linear biases (Press, Smith & Lewis, ICLR 2022, arXiv:2108.12409).

Each head h adds ``-slope[h] * distance(query, key)`` to its attention scores. The slopes are a
geometric sequence: for n heads, n a power of two, ``slope_i = 2 ** (-8 * i / n)`` for i = 1..n.
For other n the paper takes the slopes of the closest smaller power of two, p, and fills the
remaining n - p heads with every other slope of the 2p-head sequence (its odd-indexed members,
which interleave between the first ones).

Distance convention used everywhere in ``shared.kernels``: ``|i - j|`` between the query's and the
key's positions, the same as flash-attn's ``alibi_slopes`` argument. For causal attention only
``j <= i`` is visible, so this is the paper's ``-(i - j)``; for bidirectional encoders (MosaicBERT)
it is the symmetric form. When the query sequence is shorter than the key sequence (decoding with
a KV cache), queries sit at the end: query i has position ``i + (k_len - q_len)``.
"""
from __future__ import annotations

import math

import torch


def _power_of_two_slopes(n: int) -> list[float]:
    start = 2.0 ** (-8.0 / n)
    return [start ** (i + 1) for i in range(n)]


def alibi_slopes(n_heads: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Slopes for ``n_heads`` heads, shape (n_heads,), float32, largest first."""
    if n_heads < 1:
        raise ValueError(f"n_heads must be >= 1, got {n_heads}")
    closest = 2 ** math.floor(math.log2(n_heads))
    slopes = _power_of_two_slopes(closest)
    if closest != n_heads:
        slopes += _power_of_two_slopes(2 * closest)[0::2][: n_heads - closest]
    return torch.tensor(slopes, dtype=torch.float32, device=device)


def alibi_bias(slopes: torch.Tensor, q_len: int, k_len: int) -> torch.Tensor:
    """Additive bias ``-slope[h] * |i_pos - j|``, shape (heads, q_len, k_len), float32.

    Query i sits at position ``i + k_len - q_len`` (bottom-right alignment, see module docstring).
    """
    device = slopes.device
    q_pos = torch.arange(k_len - q_len, k_len, device=device)
    k_pos = torch.arange(k_len, device=device)
    distance = (q_pos[:, None] - k_pos[None, :]).abs().to(torch.float32)
    return -slopes.to(torch.float32)[:, None, None] * distance
