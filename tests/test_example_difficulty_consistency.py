"""papers.example_difficulty.score_consistency on synthetic score arrays with known structure."""
import numpy as np
import pytest

from papers.example_difficulty import score_consistency as S


def test_spearman_by_hand():
    assert S.spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert S.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(S.spearman([1, 1, 1], [1, 2, 3]))


def test_rank_correlation_grows_with_runs_averaged():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=300)
    scores = truth + rng.normal(scale=1.5, size=(12, 300))
    out = S.rank_correlation_vs_runs(scores, [1, 2, 4, 6], n_splits=10)
    means = [out[r].mean() for r in (1, 2, 4, 6)]
    assert means == sorted(means) and means[-1] - means[0] > 0.15
    with pytest.raises(ValueError, match="run counts"):
        S.rank_correlation_vs_runs(scores, [7])


def test_one_factor_gives_a_dominant_first_component():
    rng = np.random.default_rng(0)
    f = rng.normal(size=500)
    table = {f"s{i}": f * (1 if i % 2 else -1) + rng.normal(scale=0.3, size=500) for i in range(5)}
    ev = S.pca_explained_variance(table)
    assert ev[0] > 0.8 and ev.sum() == pytest.approx(1.0)
    names, m = S.spearman_matrix(table)
    assert names == list(table) and m[0, 1] < -0.8 and m[0, 2] > 0.8


def test_f_statistic_by_hand():
    scores = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0], [7.0, 5.0]])   # runs x examples
    groups = np.array(["a", "a", "b", "b"])
    f, p = S.f_statistic(scores, groups)
    # example 0: means 2 and 6, grand 4: between = 2*(4+4)/1 = 16; within = (1+1+1+1)/2 = 2 -> F = 8
    assert f[0] == pytest.approx(8.0) and 0 < p[0] < 0.2
    assert f[1] == 0.0 and p[1] == 1.0


def test_fingerprint_finds_the_sensitive_examples():
    rng = np.random.default_rng(0)
    groups = np.repeat(["mlp", "cnn", "resnet"], 6)
    scores = rng.normal(size=(18, 200))
    shift = {"mlp": -2.0, "cnn": 0.0, "resnet": 2.0}
    scores[:, :3] += np.array([shift[g] for g in groups])[:, None]        # 3 sensitive examples
    chosen = S.fingerprint_accuracy(scores, groups, [1, 3], n_splits=20)
    random = S.fingerprint_accuracy(scores, groups, [1, 3], n_splits=20, selection="random")
    assert chosen[3].mean() > 0.9 and random[3].mean() < 0.7
