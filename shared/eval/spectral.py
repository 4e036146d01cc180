"""Spectra of weight matrices and of finetuning perturbations (Biderman et al. 2024, section 4.5).

For a finetuned matrix W_ft and its base W_base, the perturbation is Delta = W_ft - W_base. Its
"rank needed to explain a fraction f of the variance" is the smallest k with

    sum_{i<=k} s_i^2 / sum_i s_i^2 >= f,      s_1 >= s_2 >= ... the singular values,

i.e. the first point where the cumulative squared-singular-value curve reaches f (f = 0.9 in the
paper). The paper compares it with the same quantity for the base matrix W_base and for a random
Gaussian matrix of the same shape, and with the LoRA ranks people use (16 to 256 at d_model 4096).

    s = singular_values(w_ft - w_base)          # (min(m, n),) float64, descending
    rank_for_variance(s, 0.9)                   # int
    matrix_spectrum_row(name, w_base, w_ft)     # dict: delta / base / random ranks, shapes
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

DEFAULT_FRACTION = 0.9


def singular_values(matrix: torch.Tensor | np.ndarray) -> np.ndarray:
    """Singular values (descending, float64 numpy) of a 2-D matrix (m, n) -> (min(m, n),).

    Computed on the matrix's own device (a GPU makes 4096 x 11008 matrices quick) in float64."""
    t = torch.as_tensor(matrix)
    if t.dim() != 2:
        raise ValueError(f"need a 2-D matrix, got shape {tuple(t.shape)}")
    return torch.linalg.svdvals(t.detach().to(torch.float64)).cpu().numpy()


def explained_variance(s: np.ndarray) -> np.ndarray:
    """Cumulative fraction of sum(s^2) captured by the first k singular values, k = 1..len(s).
    A zero matrix (all s = 0) gives all ones (nothing left to explain)."""
    s = np.asarray(s, dtype=np.float64)
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"need a non-empty 1-D array of singular values, got shape {s.shape}")
    if np.any(s < 0):
        raise ValueError("singular values must be >= 0")
    energy = np.sort(s)[::-1] ** 2
    total = energy.sum()
    if total == 0.0:
        return np.ones_like(energy)
    return np.cumsum(energy) / total


def rank_for_variance(s: np.ndarray, fraction: float = DEFAULT_FRACTION) -> int:
    """Smallest k such that the top-k singular values explain >= `fraction` of sum(s^2); 0 for a
    zero matrix."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    s = np.asarray(s, dtype=np.float64)
    if s.size and not np.any(s > 0):
        return 0
    curve = explained_variance(s)
    # small tolerance: a curve that reaches `fraction` up to rounding counts as reaching it
    return int(np.searchsorted(curve, fraction - 1e-12, side="left") + 1)


def random_gaussian_like(shape: tuple[int, int], seed: int = 0) -> torch.Tensor:
    """A standard Gaussian matrix of `shape` (the paper's random baseline; its scale is irrelevant
    to the rank metric)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64)


class SpectrumCache:
    """Rank-for-variance of base matrices (by name) and of random Gaussian matrices (by shape),
    computed once: a run snapshots Delta many times, but W_base and the random baseline never change."""

    def __init__(self, fraction: float = DEFAULT_FRACTION, seed: int = 0):
        self.fraction, self.seed = fraction, seed
        self._base: dict[str, int] = {}
        self._random: dict[tuple[int, int], int] = {}

    def base_rank(self, name: str, base: torch.Tensor) -> int:
        if name not in self._base:
            self._base[name] = rank_for_variance(singular_values(base), self.fraction)
        return self._base[name]

    def random_rank(self, shape: tuple[int, int]) -> int:
        shape = tuple(int(x) for x in shape)
        if shape not in self._random:
            self._random[shape] = rank_for_variance(singular_values(random_gaussian_like(shape, self.seed)),
                                                    self.fraction)
        return self._random[shape]


def matrix_spectrum_row(name: str, base: torch.Tensor, finetuned: torch.Tensor | None = None,
                        delta: torch.Tensor | None = None, fraction: float = DEFAULT_FRACTION,
                        cache: SpectrumCache | None = None, keep_spectrum: bool = False) -> dict:
    """Rank-for-variance of Delta (given, or finetuned - base), of the base matrix and of a random
    Gaussian matrix of the same shape, each also divided by min(shape) ("relative rank").

    Returns {"name", "rows", "cols", "full_rank", "delta_rank", "base_rank", "random_rank",
    "delta_rel_rank", "base_rel_rank", "random_rel_rank", "delta_fro"} (+ "delta_s", the singular
    values of Delta, when keep_spectrum).
    """
    if (finetuned is None) == (delta is None):
        raise ValueError("give exactly one of finetuned or delta")
    cache = cache or SpectrumCache(fraction)
    if cache.fraction != fraction:
        raise ValueError(f"cache computes ranks at fraction {cache.fraction}, asked for {fraction}")
    base_t = torch.as_tensor(base).detach()
    d = (torch.as_tensor(finetuned).detach().to(torch.float64) - base_t.to(torch.float64)) if delta is None \
        else torch.as_tensor(delta).detach()
    if tuple(d.shape) != tuple(base_t.shape) or d.dim() != 2:
        raise ValueError(f"{name}: delta {tuple(d.shape)} and base {tuple(base_t.shape)} must be equal 2-D shapes")
    s_delta = singular_values(d)
    full = min(base_t.shape)
    row = {"name": name, "rows": int(base_t.shape[0]), "cols": int(base_t.shape[1]), "full_rank": full,
           "delta_rank": rank_for_variance(s_delta, fraction), "base_rank": cache.base_rank(name, base_t),
           "random_rank": cache.random_rank(tuple(base_t.shape)), "delta_fro": float(np.sqrt((s_delta ** 2).sum()))}
    for kind in ("delta", "base", "random"):
        row[f"{kind}_rel_rank"] = row[f"{kind}_rank"] / full
    if keep_spectrum:
        row["delta_s"] = s_delta.tolist()
    return row


def spectrum_table(base: Mapping[str, torch.Tensor], finetuned: Mapping[str, torch.Tensor],
                   fraction: float = DEFAULT_FRACTION, seed: int = 0) -> list[dict]:
    """matrix_spectrum_row for every name in `finetuned` (2-D tensors; base must hold the same names)."""
    missing = sorted(set(finetuned) - set(base))
    if missing:
        raise ValueError(f"base lacks matrices {missing[:5]}")
    cache = SpectrumCache(fraction, seed)
    return [matrix_spectrum_row(n, base[n], finetuned[n], fraction=fraction, cache=cache) for n in sorted(finetuned)]
