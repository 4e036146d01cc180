"""Fitting L(N, D) = E + A/N^alpha + B/D^beta: recovery of known coefficients, robustness, errors, and the
extreme-ratio analysis built on it (shared.scaling.fit, papers.scaling_inference.extreme_ratios)."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from papers.scaling_inference.extreme_ratios import (loss_falls_at_extreme, read_paper_runs, seed_noise,
                                                     typical_fit_ablation)
from shared.scaling import ChinchillaCoefficients, get_coefficients
from shared.scaling.fit import extrapolation_residuals, fit_chinchilla, huber_objective

PAPER_CSV = Path(__file__).resolve().parents[1] / "papers" / "scaling_inference" / "data" / "trainingresults.csv"
SMALL = ChinchillaCoefficients("small", A=40.0, B=300.0, E=2.0, alpha=0.5, beta=0.4)


def grid_points(sizes, ratios):
    n = np.repeat(np.asarray(sizes, float), len(ratios))
    return n, n * np.tile(np.asarray(ratios, float), len(sizes))


def table(coef, sizes, ratios, noise=0.0, seed=0, bend=0.0):
    """A run table from a law; `bend` adds bend * log(ratio / 100) above 100 tokens/param (diminishing returns
    the law does not have)."""
    n, d = grid_points(sizes, ratios)
    loss = coef.loss(n, d) * np.exp(np.random.default_rng(seed).normal(0, noise, n.size))
    r = d / n
    loss = loss + bend * np.log(np.maximum(r / 100, 1.0))
    return pd.DataFrame({"size": [f"{x:g}" for x in n], "params": n, "tokens": d, "tokens_per_param": r,
                         "target_ratio": r, "seed": 0, "replicate": False, "loss": loss})


def test_recovers_hoffmann_coefficients_from_exact_points():
    true = get_coefficients("hoffmann")
    n, d = grid_points(np.logspace(7.5, 10, 6), np.logspace(1, 3.5, 8))
    fit = fit_chinchilla(n, d, true.loss(n, d))
    c = fit.coefficients
    for got, want in [(c.E, true.E), (c.A, true.A), (c.B, true.B), (c.alpha, true.alpha), (c.beta, true.beta)]:
        assert got == pytest.approx(want, rel=1e-4)
    assert fit.converged and fit.rms_log_residual < 1e-8 and fit.n_points == 48


def test_recovers_small_scale_coefficients_through_noise():
    n, d = grid_points([3e3, 6e3, 1.4e4, 2.5e4, 5e4], [10, 30, 100, 300, 1000])
    loss = SMALL.loss(n, d) * np.exp(np.random.default_rng(1).normal(0, 0.002, n.size))
    c = fit_chinchilla(n, d, loss).coefficients
    assert c.alpha == pytest.approx(SMALL.alpha, abs=0.05) and c.beta == pytest.approx(SMALL.beta, abs=0.03)
    assert c.E == pytest.approx(SMALL.E, abs=0.05)
    # predictions inside the grid stay within the noise
    np.testing.assert_allclose(c.loss(n, d), SMALL.loss(n, d), rtol=0.01)


def test_huber_ignores_one_gross_outlier():
    n, d = grid_points([3e3, 6e3, 1.4e4, 2.5e4, 5e4], [10, 30, 100, 300, 1000])
    loss = SMALL.loss(n, d)
    loss[7] *= 1.5                                           # one broken run
    c = fit_chinchilla(n, d, loss).coefficients
    assert c.alpha == pytest.approx(SMALL.alpha, abs=0.02) and c.beta == pytest.approx(SMALL.beta, abs=0.02)


def test_gradient_matches_finite_differences():
    n, d = grid_points([1e4, 1e5], [10, 100, 1000])
    args = (np.log(n), np.log(d), np.log(SMALL.loss(n, d) * 1.01))
    theta = np.array([3.0, 5.0, 0.5, 0.4, 0.3])
    value, grad = huber_objective(theta, *args)
    eps = 1e-6
    numeric = [(huber_objective(theta + eps * e, *args)[0] - huber_objective(theta - eps * e, *args)[0]) / (2 * eps)
               for e in np.eye(5)]
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-9)
    batch_value, batch_grad = huber_objective(np.stack([theta, theta]), *args)   # vectorised over starts
    np.testing.assert_allclose(batch_value, [value, value]) and np.testing.assert_allclose(batch_grad[1], grad)


def test_bad_inputs_are_rejected():
    n, d = grid_points([1e4, 1e5], [10, 100, 1000])
    with pytest.raises(ValueError, match="same length"):
        fit_chinchilla(n, d[:-1], SMALL.loss(n, d))
    with pytest.raises(ValueError, match="at least 5"):
        fit_chinchilla(n[:4], d[:4], SMALL.loss(n, d)[:4])
    with pytest.raises(ValueError, match="losses must be finite"):
        fit_chinchilla(n, d, -SMALL.loss(n, d))
    with pytest.raises(ValueError, match="unknown coefficients"):
        fit_chinchilla(n, d, SMALL.loss(n, d), bounds={"gamma": (0, 1)})


def test_residual_sign_means_overestimate():
    # a law that predicts lower than measured gives positive residuals
    assert extrapolation_residuals(SMALL, [1e4], [1e6], [SMALL.loss(1e4, 1e6) + 0.1])[0] == pytest.approx(0.1)


def test_paper_csv_reads_as_47_runs():
    df = read_paper_runs(PAPER_CSV)
    assert len(df) == 47 and df["size"].nunique() == 6
    assert df["tokens_per_param"].min() == 10 and df["tokens_per_param"].max() == 10000
    np.testing.assert_allclose(df["tokens"], df["params"] * df["tokens_per_param"], rtol=1e-9)


def test_loss_falls_with_and_without_noise():
    df = table(SMALL, [3e3, 1e4], [10, 100, 1000])
    falls = loss_falls_at_extreme(df, ref_ratio=100, noise_std=0.001)
    assert list(falls["beyond_noise"]) == [True, True] and (falls["max_ratio"] == 1000).all()
    assert not loss_falls_at_extreme(df, ref_ratio=100, noise_std=10.0)["beyond_noise"].any()
    # a size that never passes the reference ratio is not judged
    assert len(loss_falls_at_extreme(table(SMALL, [3e3], [10, 100]), ref_ratio=100)) == 0


def test_seed_noise_is_the_pooled_std():
    df = pd.DataFrame({"size": ["a"] * 3 + ["b"] * 2 + ["c"], "target_ratio": [100] * 6, "params": 1.0,
                       "tokens": 1.0, "tokens_per_param": 1.0, "seed": [0, 1, 2, 0, 1, 0],
                       "replicate": [False, True, True, False, True, False], "loss": [1.0, 1.2, 1.4, 2.0, 2.1, 3.0]})
    noise = seed_noise(df)
    assert noise["dof"] == 3 and noise["points"] == 2
    assert noise["std"] == pytest.approx(np.sqrt((0.08 + 0.005) / 3))
    assert seed_noise(df[df["size"] == "c"])["std"] is None


def test_ablation_flags_a_law_that_bends_and_not_one_that_holds():
    sizes, ratios = [3e3, 6e3, 1.4e4, 2.5e4], [10, 20, 30, 50, 100, 300, 1000]
    exact = typical_fit_ablation(table(SMALL, sizes, ratios), cutoff=100)
    assert abs(exact.mean_residual) < 1e-3
    bent = typical_fit_ablation(table(SMALL, sizes, ratios, bend=0.1), cutoff=100)
    assert bent.mean_residual > 0.05 and bent.fraction_overestimated == 1.0
    assert (bent.extreme["gain_overestimate"] > 0).all()
    assert len(bent.extreme) == 8 and set(bent.extreme["tokens_per_param"].round()) == {300, 1000}


def test_paper_data_typical_fit_overestimates_at_extreme_ratios():
    ablation = typical_fit_ablation(read_paper_runs(PAPER_CSV), cutoff=100)
    assert ablation.mean_residual > 0 and ablation.fraction_overestimated == 1.0
