"""same_tradeoff_curve's statistic (sweep.extra_forgetting) and its calibration (papers.lora_vs_full.calibration)."""
import math

import numpy as np
import pandas as pd
import pytest

from papers.lora_vs_full import scales
from papers.lora_vs_full.calibration import full_sweep_specs, tradeoff_null, tradeoff_tolerance
from papers.lora_vs_full.sweep import extra_forgetting, one_row_per_duration


def curve(target, source, condition="math-ift"):
    return pd.DataFrame({"condition": condition, "target_loss": target, "source_loss": source})


def test_extra_forgetting_reads_the_reference_curve_at_matched_target_loss():
    ref = curve([1.0, 2.0, 3.0], [5.0, 4.0, 3.0])              # source loss falls as the target loss rises
    assert extra_forgetting(ref, ref) == 0.0
    # other's points at target 1.5 and 2.5 sit 0.2 and 0.4 above the line (4.5 and 3.5 there)
    assert extra_forgetting(ref, curve([1.5, 2.5], [4.7, 3.9])) == pytest.approx(0.3)
    # points outside the reference's target-loss range are not extrapolated
    assert extra_forgetting(ref, curve([0.5, 2.0, 9.0], [0.0, 4.5, 0.0])) == pytest.approx(0.5)
    assert extra_forgetting(ref, curve([0.1, 7.0], [1.0, 1.0])) is None
    # the reference need not come sorted
    assert extra_forgetting(ref.iloc[::-1], curve([1.5], [4.5])) == pytest.approx(0.0)


def test_tradeoff_null_covers_every_ordered_pair_and_condition():
    conditions = ["math-ift", "code-ift"]
    points = {s: pd.concat([curve([1.0, 2.0, 3.0], [5.0 + d, 4.0 + d, 3.0 + d], c) for c in conditions])
              for s, d in ((100, 0.0), (101, 0.1), (102, -0.1))}
    null = tradeoff_null(points, conditions)
    assert len(null) == 6 * 2
    row = null[(null.reference_seed == 100) & (null.other_seed == 101) & (null.condition == "code-ift")]
    assert row.extra.item() == pytest.approx(0.1)
    summary = tradeoff_tolerance(null)
    assert summary["pairs"] == 6
    assert summary["per_pair_mean_extra"]["101->102"] == pytest.approx(-0.2)
    # pair means: +-0.1 (4 pairs with seed 100) and +-0.2 (101 <-> 102)
    assert summary["rms"] == pytest.approx(math.sqrt((4 * 0.01 + 2 * 0.04) / 6))
    assert summary["tolerance"] == pytest.approx(2 * summary["rms"])


def test_a_pair_with_no_overlap_is_left_out_of_its_condition_mean():
    points = {0: curve([1.0, 2.0], [3.0, 3.0]), 1: curve([5.0, 6.0], [3.0, 3.0])}
    null = tradeoff_null(points, ["math-ift"])
    assert null.extra.isna().all()
    assert np.isnan(tradeoff_tolerance(null)["rms"])


def test_calibration_runs_the_notebooks_full_finetuning_specs_at_other_seeds():
    plan = scales.NOTEBOOKS["02_learning_forgetting"].resolve("smoke", {})
    specs = full_sweep_specs(plan, "/base", seed=101)
    full_lrs = plan["full_lrs"]
    assert len(specs) == len(plan["conditions"]) * len(full_lrs)
    assert {s.method["method"] for s in specs.values()} == {"full"}
    assert {s.seed for s in specs.values()} == {101}
    assert {s.train["lr"] for s in specs.values()} == set(full_lrs)


def test_one_row_per_duration_keeps_separate_runs_final_rows_only():
    plan = {"duration_mode": "separate", "condition_overrides": {}, "train": {}}
    evals = pd.DataFrame({"run": ["a", "a", "a", "b", "b"], "condition": "math-ift", "step": [0, 5, 10, 5, 20]})
    kept = one_row_per_duration(evals, plan)
    assert list(zip(kept.run, kept.step)) == [("a", 0), ("a", 10), ("b", 20)]
    assert len(one_row_per_duration(evals, {**plan, "duration_mode": "along"})) == 5
