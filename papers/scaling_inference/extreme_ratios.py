"""The measured claims of Sardana et al. 2024 §4 (arXiv 2401.00448), computed from a table of training runs.

1. Loss still falls at extreme tokens per parameter: for each model size, the loss at its largest ratio is
   below its loss at a reference ratio (100) by more than seed noise.
2. A Chinchilla law fitted only on runs at typical ratios (<= 100 tokens/param) overestimates the benefit
   of tokens at extreme ratios: it predicts lower losses there than were measured (residual = measured -
   predicted > 0).

A run table is a pandas DataFrame with one row per run and columns `size`, `params`, `tokens`,
`tokens_per_param`, `target_ratio` (the planned ratio; for the paper the same as tokens_per_param), `seed`,
`replicate` (True for extra-seed runs, used for the noise estimate only) and `loss`.

    ours = runs_frame(run_grid(...))                     # papers.scaling_inference.empirical results
    paper = read_paper_runs("papers/scaling_inference/data/trainingresults.csv")
    falls = loss_falls_at_extreme(ours, ref_ratio=100, noise_std=seed_noise(ours)["std"])
    ablation = typical_fit_ablation(ours, cutoff=100, min_ratio=10)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence

import numpy as np
import pandas as pd

from shared.scaling.fit import ChinchillaFit, extrapolation_residuals, fit_chinchilla

COLUMNS = ("size", "params", "tokens", "tokens_per_param", "target_ratio", "seed", "replicate", "loss")


def read_paper_runs(path: str | Path) -> pd.DataFrame:
    """The authors' trainingresults.csv (47 runs) as a run table; `loss` is their "Smoothed Loss" (a smoothed
    final training loss). Extra columns: batch_size, and every downstream score as in the file."""
    raw = pd.read_csv(path)
    needed = {"Model Name", "Parameters", "Tokens/Params", "Tokens", "Smoothed Loss"}
    missing = needed - set(raw.columns)
    if missing:
        raise ValueError(f"{path}: not the authors' trainingresults.csv, missing columns {sorted(missing)}")
    df = pd.DataFrame({"size": raw["Model Name"].astype(str), "params": raw["Parameters"].astype(float),
                       "tokens": raw["Tokens"].astype(float), "tokens_per_param": raw["Tokens/Params"].astype(float),
                       "target_ratio": raw["Tokens/Params"].astype(float), "seed": 0, "replicate": False,
                       "loss": raw["Smoothed Loss"].astype(float)})
    if "Batch Size" in raw:
        df["batch_size"] = raw["Batch Size"]
    for col in raw.columns:
        if col.startswith("eval_gauntlet/") or col.startswith("mmlu"):
            df[col] = raw[col]
    return df


def runs_frame(results: Sequence[dict], loss_key: str = "val_loss") -> pd.DataFrame:
    """A run table from papers.scaling_inference.empirical.run_grid results (`loss` = the held-out loss)."""
    if not results:
        raise ValueError("no runs")
    df = pd.DataFrame(list(results))
    df = df.rename(columns={"noise_replicate": "replicate", loss_key: "loss"})
    missing = set(COLUMNS) - set(df.columns)
    if missing:
        raise ValueError(f"results lack {sorted(missing)}")
    return df


def _check(df: pd.DataFrame) -> pd.DataFrame:
    missing = set(COLUMNS) - set(df.columns)
    if missing:
        raise ValueError(f"run table lacks columns {sorted(missing)}; needs {list(COLUMNS)}")
    return df


def main_runs(df: pd.DataFrame) -> pd.DataFrame:
    """The runs of the main seed (replicates dropped)."""
    df = _check(df)
    return df[~df["replicate"].astype(bool)]


def seed_noise(df: pd.DataFrame) -> dict:
    """Pooled seed-to-seed standard deviation of the loss over every (size, target_ratio) point trained
    with several seeds: sqrt(sum (n_g - 1) s_g^2 / sum (n_g - 1)). std is None when no point has 2 seeds."""
    df = _check(df)
    groups = [g["loss"].to_numpy(float) for _, g in df.groupby(["size", "target_ratio"]) if len(g) > 1]
    dof = sum(len(g) - 1 for g in groups)
    if dof == 0:
        return {"std": None, "dof": 0, "points": 0, "spreads": []}
    pooled = sum(((g - g.mean()) ** 2).sum() for g in groups) / dof
    return {"std": math.sqrt(pooled), "dof": dof, "points": len(groups),
            "spreads": [float(g.max() - g.min()) for g in groups]}


def loss_falls_at_extreme(df: pd.DataFrame, ref_ratio: float = 100.0, noise_std: float | None = None,
                          min_sigmas: float = 2.0) -> pd.DataFrame:
    """Per size whose largest ratio exceeds `ref_ratio`: loss at the ratio nearest ref_ratio (on a log scale),
    loss at the largest ratio, and the drop. `beyond_noise`: drop > min_sigmas * sqrt(2) * noise_std (the
    spread of a difference of two independent runs); without noise_std, drop > 0."""
    df = main_runs(df)
    rows = []
    for size, g in df.groupby("size", sort=False):
        g = g.sort_values("target_ratio")
        top = g.iloc[-1]
        if top["target_ratio"] <= ref_ratio:
            continue
        ref = g.iloc[int(np.argmin(np.abs(np.log(g["target_ratio"].to_numpy(float) / ref_ratio))))]
        drop = float(ref["loss"] - top["loss"])
        threshold = 0.0 if noise_std is None else min_sigmas * math.sqrt(2.0) * noise_std
        rows.append({"size": size, "params": float(top["params"]), "ref_ratio": float(ref["tokens_per_param"]),
                     "ref_loss": float(ref["loss"]), "max_ratio": float(top["tokens_per_param"]),
                     "max_loss": float(top["loss"]), "drop": drop, "threshold": threshold,
                     "beyond_noise": drop > threshold})
    return pd.DataFrame(rows)


@dataclass
class Ablation:
    """Fits on typical ratios (<= cutoff) and on all ratios, and their predictions at the extreme points."""
    cutoff: float
    typical: ChinchillaFit
    all: ChinchillaFit
    extreme: pd.DataFrame            # one row per run above the cutoff
    fitted: pd.DataFrame             # the runs both fits used (ratio >= min_ratio)

    @property
    def mean_residual(self) -> float:
        """Mean of measured - typical-fit prediction over the extreme runs (> 0: the fit predicted too low)."""
        return float(self.extreme["residual_typical"].mean())

    @property
    def fraction_overestimated(self) -> float:
        return float((self.extreme["residual_typical"] > 0).mean())

    def summary(self) -> dict:
        return {"cutoff": self.cutoff, "extreme_points": len(self.extreme), "mean_residual": self.mean_residual,
                "fraction_overestimated": self.fraction_overestimated,
                "mean_residual_all_fit": float(self.extreme["residual_all"].mean()),
                "mean_gain_overestimate": float(self.extreme["gain_overestimate"].mean()),
                "typical_fit": self.typical.as_dict(), "all_fit": self.all.as_dict()}


def typical_fit_ablation(df: pd.DataFrame, cutoff: float = 100.0, min_ratio: float | None = None,
                         **fit_kwargs) -> Ablation:
    """Fit L(N, D) on main-seed runs with min_ratio <= target ratio <= cutoff and on all runs >= min_ratio;
    compare both with the measured losses of the runs above the cutoff.

    Per extreme run: residual_typical = measured - predicted (typical fit), residual_all likewise, and the
    gain from the size's last typical run (largest ratio <= cutoff) to this run, measured and predicted by
    the typical fit: gain_overestimate = predicted gain - measured gain (> 0: the fit promised more).
    """
    df = main_runs(df)
    if min_ratio is not None:
        df = df[df["target_ratio"] >= min_ratio]
    typical_rows = df[df["target_ratio"] <= cutoff]
    extreme_rows = df[df["target_ratio"] > cutoff]
    if extreme_rows.empty:
        raise ValueError(f"no runs above the cutoff {cutoff} tokens/param to extrapolate to")
    typical = fit_chinchilla(typical_rows["params"], typical_rows["tokens"], typical_rows["loss"],
                             name=f"typical (<= {cutoff:g} tok/param)", **fit_kwargs)
    full = fit_chinchilla(df["params"], df["tokens"], df["loss"], name="all ratios", **fit_kwargs)
    ext = extreme_rows[["size", "params", "tokens", "tokens_per_param", "loss"]].copy()
    ext["pred_typical"] = typical.coefficients.loss(ext["params"].to_numpy(float), ext["tokens"].to_numpy(float))
    ext["pred_all"] = full.coefficients.loss(ext["params"].to_numpy(float), ext["tokens"].to_numpy(float))
    ext["residual_typical"] = extrapolation_residuals(typical.coefficients, ext["params"], ext["tokens"], ext["loss"])
    ext["residual_all"] = extrapolation_residuals(full.coefficients, ext["params"], ext["tokens"], ext["loss"])
    gains = []
    for _, row in ext.iterrows():
        same = typical_rows[typical_rows["size"] == row["size"]]
        if same.empty:
            gains.append((np.nan, np.nan))
            continue
        ref = same.sort_values("target_ratio").iloc[-1]
        measured = float(ref["loss"] - row["loss"])
        predicted = float(typical.coefficients.loss(ref["params"], ref["tokens"]) - row["pred_typical"])
        gains.append((measured, predicted))
    ext["gain_measured"], ext["gain_predicted"] = zip(*gains)
    ext["gain_overestimate"] = ext["gain_predicted"] - ext["gain_measured"]
    return Ablation(float(cutoff), typical, full, ext.reset_index(drop=True), df.reset_index(drop=True))


__all__ = ["COLUMNS", "read_paper_runs", "runs_frame", "main_runs", "seed_noise", "loss_falls_at_extreme",
           "Ablation", "typical_fit_ablation"]
