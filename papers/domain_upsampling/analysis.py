"""Tables and checks over the domain-upsampling results (papers.domain_upsampling.pipeline.collect_results).

The input is a tidy DataFrame with columns seed, run, fraction, removed, start_step, step, metric,
value (one row per eval record and metric). Every comparison between a branch and the baseline is
paired by seed: a branch shares its own seed's baseline up to the branch step, so the question is
how far the branch moved from that baseline, and how consistently across seeds.

"Gain" is always signed so that positive is better: baseline - branch for losses / NLLs, branch -
baseline for accuracies (metrics in HIGHER_IS_BETTER).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from papers.domain_upsampling.pipeline import BASELINE

HIGHER_IS_BETTER = frozenset({"knowledge_recall_acc", "knowledge_mcq_acc", "mmlu_acc", "gsm8k_em",
                              "humaneval_pass1"})


def sign(metric: str) -> float:
    """+1 where larger values are better (HIGHER_IS_BETTER, the Gauntlet's gauntlet_* scores), -1 for losses."""
    return 1.0 if metric in HIGHER_IS_BETTER or metric.startswith("gauntlet_") else -1.0


def final_values(results: pd.DataFrame) -> pd.DataFrame:
    """Each run's last evaluation: a (seed, run) x metric table, with fraction and removed."""
    last = results.loc[results.groupby(["seed", "run", "metric"])["step"].idxmax()]
    wide = last.pivot_table(index=["seed", "run"], columns="metric", values="value")
    info = last.drop_duplicates(["seed", "run"]).set_index(["seed", "run"])[["fraction", "removed"]]
    return info.join(wide).reset_index()


def gains(final: pd.DataFrame, metrics: Sequence[str], reference: str = BASELINE) -> pd.DataFrame:
    """Per seed and run: the gain of each metric over the same seed's `reference` run."""
    ref = final[final["run"] == reference].set_index("seed")[list(metrics)]
    out = final[["seed", "run", "fraction", "removed"]].copy()
    for m in metrics:
        out[m] = sign(m) * (final[m].to_numpy() - ref.loc[final["seed"], m].to_numpy())
    return out


def sweep(final: pd.DataFrame) -> pd.DataFrame:
    """The f sweep: the baseline (f = 0) and the branches without a removed domain, ordered by f."""
    rows = final[final["removed"].isna() | (final["run"] == BASELINE)]
    return rows.sort_values(["fraction", "seed"]).reset_index(drop=True)


def paired_effect(final: pd.DataFrame, run: str, metric: str, reference: str = BASELINE) -> dict:
    """Gain of `run` over `reference` on `metric`, per seed: mean, spread (max - min over seeds),
    min, and the spread of the reference's own values across seeds (between-seed variation)."""
    g = gains(final, [metric], reference)
    per_seed = g[g["run"] == run].set_index("seed")[metric]
    ref_values = final[final["run"] == reference][metric]
    return {"per_seed": per_seed.round(5).to_dict(), "mean": float(per_seed.mean()),
            "spread": float(per_seed.max() - per_seed.min()), "min": float(per_seed.min()),
            "reference_spread": float(ref_values.max() - ref_values.min())}


def beats_reference(effect: Mapping) -> bool:
    """The paired gain is positive for every seed and its mean exceeds its spread across seeds."""
    return bool(effect["min"] > 0 and effect["mean"] > effect["spread"])


def monotone(values: Sequence[float], tolerance: float = 0.0) -> bool:
    """Non-decreasing (each step may fall by at most `tolerance`)."""
    v = np.asarray(values, dtype=float)
    return bool(np.all(np.diff(v) >= -tolerance))


def mean_gain_by_fraction(final: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Mean (over seeds) gain over the baseline of each metric, per sweep fraction (f = 0 gives 0)."""
    g = gains(sweep(final), metrics)
    return g.groupby("fraction")[list(metrics)].mean()


def ablation_deltas(final: pd.DataFrame, metrics: Sequence[str], full_branch: str) -> pd.DataFrame:
    """Loss of performance from removing each domain during upsampling: for every ablation run,
    the mean over seeds of (full branch - ablated branch) in gain units, so positive = the removal
    hurt. Rows: removed domain; columns: metrics."""
    g = gains(final, metrics, reference=full_branch)
    abl = g[g["removed"].notna()]
    return -abl.groupby("removed")[list(metrics)].mean()


def ablation_spreads(final: pd.DataFrame, metrics: Sequence[str], full_branch: str) -> pd.DataFrame:
    """Spread (max - min over seeds) of each ablation delta, same layout as ablation_deltas."""
    g = gains(final, metrics, reference=full_branch)
    abl = g[g["removed"].notna()]
    return abl.groupby("removed")[list(metrics)].agg(lambda s: s.max() - s.min())


def hits_own_domain_hardest(deltas: pd.DataFrame, domain_metrics: Mapping[str, str]) -> dict[str, bool]:
    """For each removed domain: is its own metric the one that lost most (in these units)?"""
    out = {}
    for domain in deltas.index:
        own = domain_metrics[domain]
        row = deltas.loc[domain, list(domain_metrics.values())]
        out[domain] = bool(row.idxmax() == own and row[own] > 0)
    return out
