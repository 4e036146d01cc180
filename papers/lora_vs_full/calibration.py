"""Calibration of `same_tradeoff_curve`'s tolerance, run apart from the notebook (02_learning_forgetting).

The claim asks whether LoRA lies on full finetuning's learning-forgetting curve: LoRA's general-text loss at
matched target loss, minus full finetuning's (``sweep.extra_forgetting``), averaged over the conditions, must
not exceed a tolerance. Two full-finetuning sweeps that differ only in their training seed lie on one curve by
definition, so the same statistic between them measures how far apart "one curve" lands by chance. The
tolerance is twice the root-mean-square of that statistic over every ordered pair of calibration seeds
(rule fixed before the calibration ran; RMS about zero, since the null's true value is zero).

    python -m papers.lora_vs_full.calibration --seeds 100 101 102     # smoke preset, base of runs/smoke

Runs every full-finetuning run of the preset's LR sweep (all LRs and durations, the notebook's own specs but
the seed) into <out>/seed<S>/, keeps finished runs, and writes tradeoff_null.csv (one row per ordered seed pair
and condition) and tradeoff_tolerance.json beside them.
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from itertools import permutations
from pathlib import Path

import numpy as np
import pandas as pd

from papers.lora_vs_full import scales
from papers.lora_vs_full import sweep as lvf

REPO = Path(__file__).resolve().parents[2]


def full_sweep_specs(plan: Mapping, base: str, seed: int) -> dict:
    """The notebook's LR-sweep specs of full finetuning only, with training seed `seed`."""
    return {name: spec for name, spec in lvf.plan_sweep({**plan, "seed": seed}, base).items()
            if spec.method["method"] == "full"}


def full_sweep_points(plan: Mapping, base: str, out_dir: Path, seed: int) -> pd.DataFrame:
    """Run (or keep) the full-finetuning sweep at `seed` in out_dir/seed<seed>; its evaluated points (step > 0),
    one row per run and evaluated duration, as the notebook's curves read them."""
    specs = full_sweep_specs(plan, base, seed)
    folder = out_dir / f"seed{seed}"
    lvf.launch(specs, folder)
    evals = lvf.one_row_per_duration(lvf.results_frame(folder, specs, base_metrics=False), plan)
    return evals[evals["step"] > 0]


def tradeoff_null(points: Mapping[int, pd.DataFrame], conditions: Sequence[str]) -> pd.DataFrame:
    """Rows reference_seed, other_seed, condition, extra: ``sweep.extra_forgetting`` of one seed's full-finetuning
    points against another's curve, for every ordered pair of seeds and every condition (extra is NaN where no
    point falls inside the reference's range)."""
    rows = []
    for a, b in permutations(sorted(points), 2):
        for condition in conditions:
            ref, other = (points[s][points[s]["condition"] == condition] for s in (a, b))
            extra = lvf.extra_forgetting(ref, other)
            rows.append({"reference_seed": a, "other_seed": b, "condition": condition,
                         "extra": np.nan if extra is None else extra})
    return pd.DataFrame(rows)


def tradeoff_tolerance(null: pd.DataFrame) -> dict:
    """The claim's statistic (mean over conditions) for each ordered seed pair, and the tolerance: twice its
    root-mean-square over the pairs."""
    per_pair = null.groupby(["reference_seed", "other_seed"])["extra"].mean()
    rms = float(np.sqrt(np.mean(np.square(per_pair.to_numpy()))))
    return {"per_pair_mean_extra": {f"{a}->{b}": float(v) for (a, b), v in per_pair.items()},
            "rms": rms, "tolerance": 2 * rms, "pairs": int(len(per_pair))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[100, 101, 102])
    ap.add_argument("--scale", default="smoke", choices=("smoke", "small"))
    ap.add_argument("--base", type=Path, default=None,
                    help="base.json of 01_pretrain_base (default: runs/<scale>/lora_vs_full/01_pretrain_base/)")
    ap.add_argument("--out", type=Path, default=None, help="default: runs/calibration/<scale>/lora_vs_full")
    args = ap.parse_args(argv)
    if len(set(args.seeds)) < 2:
        ap.error("give at least two distinct --seeds")
    base_json = args.base or REPO / "runs" / args.scale / "lora_vs_full" / "01_pretrain_base" / "base.json"
    if not base_json.exists():
        ap.error(f"{base_json} not found: run 01_pretrain_base at scale {args.scale} first")
    base = json.loads(base_json.read_text())["hf_path"]
    out = args.out or REPO / "runs" / "calibration" / args.scale / "lora_vs_full"
    plan = scales.NOTEBOOKS["02_learning_forgetting"].resolve(args.scale, {})
    points = {}
    for seed in args.seeds:
        print(f"full-finetuning sweep at seed {seed} ...", flush=True)
        points[seed] = full_sweep_points(plan, base, out, seed)
    null = tradeoff_null(points, plan["conditions"])
    summary = {"seeds": args.seeds, "scale": args.scale, **tradeoff_tolerance(null)}
    out.mkdir(parents=True, exist_ok=True)
    null.to_csv(out / "tradeoff_null.csv", index=False)
    (out / "tradeoff_tolerance.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(null.to_string(index=False))
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
