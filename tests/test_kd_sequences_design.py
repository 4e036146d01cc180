"""papers.kd_sequences: symmetric label noise, the strategy-vs-best-alternative comparison and the
teacher-vs-short-run guard."""
import pandas as pd
import pytest
import torch

from papers.kd_sequences.costs import accuracy_vs_best_alternative, teacher_vs_short_run
from papers.kd_sequences.sequences import with_label_noise
from shared.data.images import ImageSet


def _set(n=1000, classes=10):
    return ImageSet(torch.zeros(n, 1, 2, 2), torch.arange(n) % classes, tuple(str(c) for c in range(classes)))


def test_label_noise_flips_the_asked_fraction_to_other_classes_deterministically():
    data = _set()
    noisy = with_label_noise(data, 0.3, seed=0)
    flipped = noisy.y != data.y
    assert int(flipped.sum()) == 300                                  # every flipped label changed class
    assert torch.equal(noisy.y, with_label_noise(data, 0.3, seed=0).y)
    assert not torch.equal(noisy.y, with_label_noise(data, 0.3, seed=1).y)
    assert int(noisy.y.max()) < 10 and torch.equal(noisy.x, data.x)
    assert with_label_noise(data, 0.0) is data


def test_strategy_is_compared_with_the_better_of_kd_and_scratch():
    summary = pd.DataFrame({"sequence": ["s"] * 3, "method": ["scratch", "kd", "kd_early"],
                            "acc_full_budget": [0.90, 0.85, 0.86]})
    gap = accuracy_vs_best_alternative(summary, ["kd_early"])
    assert gap["kd_early"]["s"] == pytest.approx(-0.04)               # KD below scratch: scratch is the bar


def test_teacher_of_run_1_is_run_0_scratch_and_of_later_runs_the_kd_model():
    rows = [{"sequence": "s", "run": 0, "method": "scratch", "steps": 8, "seed": 0, "test_acc": 0.8}]
    for k in (1, 2):
        rows += [{"sequence": "s", "run": k, "method": "scratch", "steps": 1, "seed": 0, "test_acc": 0.5},
                 {"sequence": "s", "run": k, "method": "scratch", "steps": 8, "seed": 0, "test_acc": 0.7},
                 {"sequence": "s", "run": k, "method": "kd", "steps": 8, "seed": 0, "test_acc": 0.9}]
    t = teacher_vs_short_run(pd.DataFrame(rows)).iloc[0]
    assert t["teacher_acc"] == pytest.approx((0.8 + 0.9) / 2)
    assert t["scratch_shortest_budget_acc"] == pytest.approx(0.5)
