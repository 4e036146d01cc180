"""papers.kd_sequences.costs: cost to target interpolates in log cost, speedups against scratch."""
import math

import numpy as np
import pandas as pd
import pytest

from papers.kd_sequences.costs import cost_to_target, geomean, per_run_costs, summarize


def test_cost_to_target_interpolates_in_log_cost():
    assert cost_to_target([1, 10], [0.9, 0.95], 0.8) == 1.0                  # reached at the first budget
    assert cost_to_target([1, 100], [0.5, 0.7], 0.6) == pytest.approx(10.0)  # halfway in log cost
    assert math.isinf(cost_to_target([1, 10], [0.5, 0.6], 0.7))


def test_geomean_handles_zero_and_inf():
    assert geomean([2.0, 8.0]) == pytest.approx(4.0)
    assert geomean([0.0, 3.0]) == 0.0
    assert math.isnan(geomean([np.inf, 2.0]))


def test_speedup_of_a_method_that_reaches_the_target_sooner():
    rows = []
    for method, accs in (("scratch", [0.5, 0.8]), ("kd", [0.8, 0.9])):
        for steps, acc in zip((10, 20), accs):
            rows.append({"sequence": "s", "run": 1, "method": method, "steps": steps, "test_acc": acc,
                         "total_flops": float(steps), "wall_s": float(steps), "teacher_flops": 0.0,
                         "student_flops": float(steps)})
    per_run = per_run_costs(pd.DataFrame(rows))
    kd = per_run[per_run["method"] == "kd"].iloc[0]
    assert kd["flops_to_target"] == 10.0 and kd["speedup_flops"] == pytest.approx(2.0)
    summary = summarize(per_run)
    assert set(summary["method"]) == {"scratch", "kd"}
    assert summary.set_index("method").loc["scratch", "speedup_flops"] == pytest.approx(1.0)
