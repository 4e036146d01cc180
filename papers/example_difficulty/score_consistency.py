"""How consistent example difficulty scores are across runs, scoring methods and architectures
(the analyses of Kwok et al. 2024), on score arrays:

    scores [R, N]: one score for N examples from R runs;  groups [R]: each run's architecture.

- `rank_correlation_vs_runs`: Spearman correlation between the mean of r runs and the mean of a
  disjoint set of held-out runs, against r (the many-run mean of the *other* runs is the reference,
  so r = all runs is not trivially 1).
- `spearman_matrix`, `pca_explained_variance`: agreement between scoring methods.
- `f_statistic`: one-way ANOVA F of each example's score across architectures (between-group over
  within-group mean square): how architecture-sensitive the example is.
- `fingerprint_accuracy`: identify a held-out run's architecture from its scores on the k most
  architecture-sensitive examples (chosen on the training runs only; nearest class centroid).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import stats


def _rank(x: np.ndarray) -> np.ndarray:
    return stats.rankdata(x, axis=-1)


def spearman(a, b) -> float:
    """Spearman rank correlation of two score vectors [N] (average ranks for ties)."""
    ra, rb = _rank(np.asarray(a, float)), _rank(np.asarray(b, float))
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def rank_correlation_vs_runs(scores, run_counts: Sequence[int], n_splits: int = 20,
                             seed: int = 0) -> dict[int, np.ndarray]:
    """{r: [n_splits] Spearman correlations} of the mean of r runs with the mean of the held-out
    runs. Each split permutes the R runs; the last R - R // 2 are the reference, r <= R // 2 are
    drawn from the first half."""
    s = np.asarray(scores, float)
    r_total = s.shape[0]
    half = r_total // 2
    bad = [r for r in run_counts if not 1 <= r <= half]
    if bad:
        raise ValueError(f"run counts {bad} must be in [1, {half}] with {r_total} runs (half are the reference)")
    rng = np.random.default_rng(seed)
    out = {r: np.empty(n_splits) for r in run_counts}
    for i in range(n_splits):
        perm = rng.permutation(r_total)
        reference = s[perm[half:]].mean(0)
        for r in run_counts:
            out[r][i] = spearman(s[perm[:r]].mean(0), reference)
    return out


def spearman_matrix(table: Mapping[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """(names, [S, S] Spearman correlations) between the score vectors [N] of `table`."""
    names = list(table)
    ranks = np.stack([_rank(np.asarray(table[n], float)) for n in names])
    return names, np.corrcoef(ranks)


def pca_explained_variance(table: Mapping[str, np.ndarray]) -> np.ndarray:
    """Explained-variance ratios of the principal components of the rank-transformed,
    standardized scores (examples are observations, scores are variables): [S], descending."""
    ranks = np.stack([_rank(np.asarray(v, float)) for v in table.values()], axis=1)   # [N, S]
    std = ranks.std(0)
    keep = std > 0
    z = (ranks[:, keep] - ranks[:, keep].mean(0)) / std[keep]
    eig = np.linalg.svd(z, compute_uv=False) ** 2
    return eig / eig.sum()


def per_example_spread(scores) -> tuple[np.ndarray, np.ndarray]:
    """(mean [N], standard deviation [N]) of each example's score over runs."""
    s = np.asarray(scores, float)
    return s.mean(0), s.std(0, ddof=1)


def f_statistic(scores, groups) -> tuple[np.ndarray, np.ndarray]:
    """One-way ANOVA across groups for each example: (F [N], p-value [N]).

    F = [sum_g n_g (mean_g - mean)^2 / (G - 1)] / [sum_g sum_i (s_gi - mean_g)^2 / (R - G)].
    Examples with no within-group variance get F = inf if the group means differ, else 0 (p = 1).
    """
    s = np.asarray(scores, float)
    g = np.asarray(groups)
    labels = np.unique(g)
    if len(labels) < 2:
        raise ValueError("f_statistic needs runs from at least 2 groups")
    r_total, n_groups = s.shape[0], len(labels)
    if r_total <= n_groups:
        raise ValueError(f"need more runs ({r_total}) than groups ({n_groups})")
    grand = s.mean(0)
    between = sum((g == l).sum() * (s[g == l].mean(0) - grand) ** 2 for l in labels) / (n_groups - 1)
    within = sum(((s[g == l] - s[g == l].mean(0)) ** 2).sum(0) for l in labels) / (r_total - n_groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(within > 0, between / np.where(within > 0, within, 1.0), np.where(between > 0, np.inf, 0.0))
    p = stats.f.sf(f, n_groups - 1, r_total - n_groups)
    p = np.where(np.isnan(p), 1.0, p)
    return f, p


def _nearest_centroid(train_x, train_y, test_x):
    mu, sd = train_x.mean(0), train_x.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    tx, ex = (train_x - mu) / sd, (test_x - mu) / sd
    labels = np.unique(train_y)
    centroids = np.stack([tx[train_y == l].mean(0) for l in labels])
    d = ((ex[:, None, :] - centroids[None]) ** 2).sum(-1)
    return labels[d.argmin(1)]


def fingerprint_accuracy(scores, groups, ks: Sequence[int], n_splits: int = 50, test_per_group: int = 1,
                         seed: int = 0, selection: str = "f") -> dict[int, np.ndarray]:
    """{k: [n_splits] accuracies}: hold out `test_per_group` runs of each architecture, rank the
    examples by F statistic on the remaining runs (selection="f") or pick them at random
    (selection="random", the baseline), and classify each held-out run by the nearest class
    centroid of the training runs' scores on the top k examples."""
    if selection not in ("f", "random"):
        raise ValueError(f"selection={selection!r} is not valid; choose one of ['f', 'random']")
    s = np.asarray(scores, float)
    g = np.asarray(groups)
    labels = np.unique(g)
    rng = np.random.default_rng(seed)
    out = {k: np.empty(n_splits) for k in ks}
    for i in range(n_splits):
        test = np.concatenate([rng.choice(np.flatnonzero(g == l), test_per_group, replace=False) for l in labels])
        train = np.setdiff1d(np.arange(len(g)), test)
        if selection == "f":
            f, _ = f_statistic(s[train], g[train])
            order = np.argsort(-np.nan_to_num(f, posinf=np.finfo(float).max), kind="stable")
        else:
            order = rng.permutation(s.shape[1])
        for k in ks:
            cols = order[:k]
            pred = _nearest_centroid(s[train][:, cols], g[train], s[test][:, cols])
            out[k][i] = float((pred == g[test]).mean())
    return out


def standardize_runs(scores) -> np.ndarray:
    """Each run's scores standardized over the examples: [R, N] -> [R, N] with zero mean and unit
    std per row (removes a run's overall level, e.g. an architecture's higher accuracy)."""
    s = np.asarray(scores, float)
    return (s - s.mean(1, keepdims=True)) / np.maximum(s.std(1, keepdims=True), 1e-12)
