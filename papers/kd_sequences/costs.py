"""Cost to reach the from-scratch accuracy, and speedups, from 01_sequences' results table.

    curves = mean_curves(results)              # mean over seeds per (sequence, run, method, budget)
    per_run = per_run_costs(curves)            # cost to target and speedup of every later run and method
    summary = summarize(per_run)               # per (sequence, method): geometric-mean speedups, overhead

For each later run the target is the accuracy scratch reaches at the full budget (mean over seeds);
a method's cost to target is where its accuracy-vs-cost curve first reaches it, interpolated
linearly in log cost between budgets (inf if never).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def cost_to_target(costs: Sequence[float], accs: Sequence[float], target: float) -> float:
    """First cost at which the piecewise-linear (in log cost) curve reaches `target`; inf if never.
    costs, accs: [B] per budget, in increasing cost."""
    costs, accs = np.asarray(costs, float), np.asarray(accs, float)
    if accs[0] >= target:
        return float(costs[0])
    for i in range(1, len(accs)):
        if accs[i] >= target:
            t = (target - accs[i - 1]) / (accs[i] - accs[i - 1])
            return float(np.exp(np.log(costs[i - 1]) + t * (np.log(costs[i]) - np.log(costs[i - 1]))))
    return float("inf")


def geomean(x) -> float:
    """Geometric mean of positive finite values; 0 if any value is 0; nan otherwise (e.g. an inf)."""
    x = np.asarray(x, float)
    if np.all(x > 0) and np.all(np.isfinite(x)):
        return float(np.exp(np.mean(np.log(x))))
    return float(np.min(x)) if np.any(x == 0) else float("nan")


def mean_curves(results: pd.DataFrame) -> pd.DataFrame:
    """The later runs' (run > 0) accuracy and costs, mean over seeds per (sequence, run, method, steps)."""
    later = results[results["run"] > 0]
    return later.groupby(["sequence", "run", "method", "steps"])[
        ["test_acc", "total_flops", "wall_s", "teacher_flops", "student_flops"]].mean().reset_index()


def per_run_costs(curves: pd.DataFrame) -> pd.DataFrame:
    """One row per (sequence, run, method): target, accuracy at the full budget, FLOPs and seconds to
    target, and the speedup over scratch in each unit."""
    rows = []
    for (seq, k), g in curves.groupby(["sequence", "run"]):
        full = g["steps"].max()
        target = g[(g["method"] == "scratch") & (g["steps"] == full)]["test_acc"].item()
        for method, m in g.groupby("method"):
            m = m.sort_values("steps")
            rows.append({"sequence": seq, "run": k, "method": method, "target": target,
                         "acc_full_budget": m["test_acc"].iloc[-1],
                         "flops_to_target": cost_to_target(m["total_flops"], m["test_acc"], target),
                         "seconds_to_target": cost_to_target(m["wall_s"], m["test_acc"], target),
                         "teacher_flops_full": m["teacher_flops"].iloc[-1],
                         "student_flops_full": m["student_flops"].iloc[-1]})
    per_run = pd.DataFrame(rows)
    for unit in ("flops", "seconds"):
        scratch = per_run[per_run["method"] == "scratch"].set_index(["sequence", "run"])[f"{unit}_to_target"]
        index = pd.MultiIndex.from_frame(per_run[["sequence", "run"]])
        per_run[f"speedup_{unit}"] = scratch.reindex(index).to_numpy() / per_run[f"{unit}_to_target"]
    return per_run


def summarize(per_run: pd.DataFrame) -> pd.DataFrame:
    """Per (sequence, method): geometric-mean speedups over the runs, runs that reached the target,
    mean accuracy at the full budget, and teacher FLOPs as a fraction of student FLOPs."""
    summary = per_run.groupby(["sequence", "method"], sort=False).agg(
        speedup_flops=("speedup_flops", geomean), speedup_seconds=("speedup_seconds", geomean),
        reached=("flops_to_target", lambda x: int(np.isfinite(x).sum())), runs=("run", "count"),
        acc_full_budget=("acc_full_budget", "mean"), target=("target", "mean"),
        teacher_overhead=("teacher_flops_full", "sum")).reset_index()
    student = per_run.groupby(["sequence", "method"], sort=False)["student_flops_full"].sum().to_numpy()
    summary["teacher_overhead"] = summary["teacher_overhead"] / student
    return summary


def accuracy_vs_best_alternative(summary: pd.DataFrame, strategies: Sequence[str]) -> dict[str, dict[str, float]]:
    """{strategy: {sequence: its mean full-budget accuracy minus the better of full KD's and scratch's}}:
    a strategy that keeps accuracy loses little against the best of the methods it could replace."""
    acc = summary.set_index(["sequence", "method"])["acc_full_budget"]
    sequences = list(dict.fromkeys(summary["sequence"]))
    return {m: {seq: float(acc[(seq, m)] - max(acc[(seq, "kd")], acc[(seq, "scratch")])) for seq in sequences}
            for m in strategies}


def teacher_vs_short_run(results: pd.DataFrame, method: str = "kd") -> pd.DataFrame:
    """Per sequence: the mean test accuracy of the teachers `method` distils from in runs 1.. (run
    k - 1's full-budget model of that method; run 0's scratch model for run 1) and of scratch at the
    smallest budget of the same runs, over runs and seeds."""
    full, short = results["steps"].max(), results["steps"].min()
    rows = []
    for seq, g in results.groupby("sequence", sort=False):
        later = sorted(k for k in g["run"].unique() if k > 0)
        teacher = [g[(g["run"] == k - 1) & (g["steps"] == full) & (g["method"] == (method if k > 1 else "scratch"))]
                   ["test_acc"].mean() for k in later]
        student = [g[(g["run"] == k) & (g["steps"] == short) & (g["method"] == "scratch")]["test_acc"].mean()
                   for k in later]
        rows.append({"sequence": seq, "teacher_acc": float(np.mean(teacher)),
                     "scratch_shortest_budget_acc": float(np.mean(student))})
    return pd.DataFrame(rows)


def seed_spread(results: pd.DataFrame) -> pd.DataFrame:
    """Per (sequence, method, steps): mean and std over seeds of the test accuracy averaged over the
    later runs (the spread the figures draw)."""
    later = results[results["run"] > 0]
    per_seed = later.groupby(["sequence", "method", "steps", "seed"])[["test_acc", "total_flops"]].mean()
    return per_seed.groupby(["sequence", "method", "steps"]).agg(
        acc_mean=("test_acc", "mean"), acc_std=("test_acc", "std"), total_flops=("total_flops", "mean")).reset_index()
