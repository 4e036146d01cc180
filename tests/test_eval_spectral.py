"""shared.eval.spectral: the rank needed to explain a fraction of a matrix's variance, and
shared.eval.diversity: distinct completions and n-grams."""
import numpy as np
import pytest
import torch

from shared.eval.diversity import distinct_n, generation_diversity, unique_fraction
from shared.eval.spectral import (SpectrumCache, explained_variance, matrix_spectrum_row, random_gaussian_like,
                                  rank_for_variance, singular_values, spectrum_table)


def low_rank(m: int, n: int, s: list[float], seed: int = 0) -> torch.Tensor:
    """An (m, n) matrix with exactly the singular values s (random orthonormal factors)."""
    g = torch.Generator().manual_seed(seed)
    u, _ = torch.linalg.qr(torch.randn(m, len(s), generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(n, len(s), generator=g, dtype=torch.float64))
    return u @ torch.diag(torch.tensor(s, dtype=torch.float64)) @ v.T


def test_rank_of_constructed_low_rank_matrices():
    # rank 5 with equal singular values: 4 explain 80% < 90%, 5 explain all
    assert rank_for_variance(singular_values(low_rank(40, 30, [1.0] * 5))) == 5
    # one dominant direction: 10^2 / (10^2 + 4 * 1^2) = 0.96 >= 0.9
    assert rank_for_variance(singular_values(low_rank(40, 30, [10.0, 1, 1, 1, 1]))) == 1
    # energies 0.5, 0.3, 0.15, 0.05: 90% needs three
    s = np.sqrt([0.5, 0.3, 0.15, 0.05])
    assert rank_for_variance(singular_values(low_rank(20, 20, list(s)))) == 3
    assert rank_for_variance(s, 0.5) == 1 and rank_for_variance(s, 0.8) == 2 and rank_for_variance(s, 1.0) == 4


def test_exact_boundary_and_zero_matrix():
    assert rank_for_variance(np.ones(10), 0.9) == 9          # 9/10 reaches 0.9 exactly
    assert rank_for_variance(np.zeros(6)) == 0
    assert np.allclose(explained_variance(np.array([3.0, 4.0])), [16 / 25, 1.0])
    with pytest.raises(ValueError):
        rank_for_variance(np.ones(3), 0.0)
    with pytest.raises(ValueError):
        singular_values(torch.ones(3))


def test_random_matrix_needs_a_high_rank():
    s = singular_values(random_gaussian_like((64, 64), seed=1))
    r = rank_for_variance(s)
    assert 0.5 * 64 < r < 0.9 * 64       # no low-rank structure: most directions are needed


def test_spectrum_row_compares_delta_with_base_and_random():
    base = random_gaussian_like((48, 32), seed=3)
    delta = low_rank(48, 32, [2.0, 2.0])
    row = matrix_spectrum_row("layers.0.q_proj", base, finetuned=base + delta, keep_spectrum=True)
    assert row["delta_rank"] == 2 and row["full_rank"] == 32 and row["rows"] == 48
    assert row["base_rank"] == row["random_rank"] > 10            # the same Gaussian draw
    assert row["delta_rel_rank"] == pytest.approx(2 / 32)
    assert row["delta_fro"] == pytest.approx(float(torch.linalg.norm(delta)), rel=1e-9)
    again = matrix_spectrum_row("layers.0.q_proj", base, delta=delta)
    assert again["delta_rank"] == row["delta_rank"]
    with pytest.raises(ValueError):
        matrix_spectrum_row("x", base, finetuned=base, delta=delta)
    with pytest.raises(ValueError):
        matrix_spectrum_row("x", base, delta=torch.zeros(4, 4))


def test_cache_and_table():
    cache = SpectrumCache(0.9)
    base = {"a": random_gaussian_like((16, 8), 0), "b": random_gaussian_like((16, 8), 1)}
    ft = {k: v + low_rank(16, 8, [1.0]) for k, v in base.items()}
    rows = spectrum_table(base, ft)
    assert [r["name"] for r in rows] == ["a", "b"] and all(r["delta_rank"] == 1 for r in rows)
    assert cache.random_rank((16, 8)) == cache.random_rank((16, 8))
    with pytest.raises(ValueError):
        spectrum_table({}, ft)


def test_diversity_metrics():
    assert unique_fraction(["a", "a ", "b", "c"]) == 0.75
    assert distinct_n(["x y x y"], 2) == pytest.approx(2 / 3)   # bigrams: xy, yx, xy
    assert distinct_n(["x"], 2) == 0.0
    rep = generation_diversity({"p": ["a b", "a b"], "q": ["a b", "c d"]}, ns=(1, 2))
    assert rep.unique_fraction == pytest.approx(0.75) and rep.samples_per_prompt == 2
    assert rep.distinct["distinct_2"] == pytest.approx((0.5 + 1.0) / 2)
    with pytest.raises(ValueError):
        generation_diversity({"p": ["a"], "q": ["a", "b"]})
