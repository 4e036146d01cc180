"""Draw each paper's claims across seeds: one strip per measured quantity, one dot per seed.

    python ci/seed_spread.py                 # every paper with at least two seeds run
    python ci/seed_spread.py --paper kd_sequences
    make seeds                               # runs seeds 1 and 2; the gallery build draws it too

Reads the claims of the smoke runs at seeds 0, 1, 2 (seed 0 from ``runs/smoke/``, the others from
``runs/seeds/seed<N>/smoke/``, as ``ci/claim_outcomes.py``) and writes
``runs/smoke/<paper>/seed_spread.{png,svg}``, which the gallery shows beside the paper's claims.

Only ``paper`` claims are drawn (``method`` and ``sanity`` checks do not depend on the seed's luck), and of
each claim the numbers that differ between seeds, with the non-integer numbers beside them (the other arm of a
comparison); counts and sizes that are the same at every seed carry no spread. Numbers of like size share an
axis, a row each, so two arms can be compared; numbers an order of magnitude apart get axes of their own. A
dashed line marks zero when it is in range, since most claims compare a difference with it (the threshold
itself is in the claims table).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from shared.experiment.ledger import OUTCOME_SEEDS  # noqa: E402
from shared.experiment.plotting import save_figure  # noqa: E402

MAX_STRIPS_PER_CLAIM = 8
SEED_MARKERS = {0: "o", 1: "s", 2: "^"}


def seed_runs_dir(runs: Path, seed: int) -> Path:
    """Where the smoke run at ``seed`` lives under ``runs`` (the layout of ``make seeds``)."""
    return runs / "smoke" if seed == 0 else runs / "seeds" / f"seed{seed}" / "smoke"


def numeric_leaves(value, prefix: str = "") -> dict[str, float]:
    """{dotted path: number} of every finite int/float inside nested dicts and lists (bools left out)."""
    out: dict[str, float] = {}
    if isinstance(value, dict):
        for key, sub in value.items():
            out.update(numeric_leaves(sub, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            out.update(numeric_leaves(sub, f"{prefix}[{i}]"))
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        out[prefix or "value"] = float(value)
    return out


def parent(path: str) -> str:
    """The dotted path of the dict or list holding ``path`` ('a.b[2].c' -> 'a.b[2]')."""
    return path[:max(path.rfind("."), path.rfind("["), 0)]


def finished_claims(run_dir: Path, seed: int) -> dict[str, dict] | None:
    """{claim id: claim} of a finished run at ``seed``, or None if it did not run, ran another seed or failed."""
    try:
        prov = json.loads((run_dir / "provenance.json").read_text())
        claims = json.loads((run_dir / "claims.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if prov.get("status") != "finished" or prov.get("seed") != seed:
        return None
    return {c["id"]: c for c in claims}


def collect(runs: Path, paper: str) -> list[dict]:
    """The paper claims of ``paper`` with their varying numbers per seed, in notebook and ledger order.

    Returns [{"id", "notebook", "status": {seed: holds/fails/n/a}, "strips": [(path, {seed: value})],
    "left_out": int}], only for claims measured at two seeds or more."""
    notebooks = sorted(p.name for p in (runs / "smoke" / paper).iterdir() if p.is_dir()) \
        if (runs / "smoke" / paper).is_dir() else []
    out = []
    for nb in notebooks:
        by_seed = {s: finished_claims(seed_runs_dir(runs, s) / paper / nb, s) for s in OUTCOME_SEEDS}
        by_seed = {s: c for s, c in by_seed.items() if c is not None}
        if len(by_seed) < 2:
            continue
        first = by_seed[min(by_seed)]
        for claim_id, claim in first.items():
            if claim.get("kind") != "paper":
                continue
            per_seed = {s: c[claim_id] for s, c in by_seed.items() if claim_id in c}
            if len(per_seed) < 2:
                continue
            leaves = {s: numeric_leaves(c.get("ours")) for s, c in per_seed.items()}
            paths = [p for p in leaves[min(leaves)] if all(p in lv for lv in leaves.values())]
            varying = [p for p in paths if len({leaves[s][p] for s in leaves}) > 1]
            # a constant number beside a varying one (the deterministic arm of a comparison) is drawn too,
            # unless it is a whole number (a count or a size)
            parents = {parent(p) for p in varying}
            varying = [p for p in paths if p in varying or (parent(p) in parents
                                                            and not leaves[min(leaves)][p].is_integer())]
            if not varying:
                continue
            status = {s: {True: "holds", False: "fails", None: "n/a"}[c.get("holds")] for s, c in per_seed.items()}
            strips = [(p, {s: leaves[s][p] for s in leaves}) for p in varying[:MAX_STRIPS_PER_CLAIM]]
            out.append({"id": claim_id, "notebook": nb, "status": status, "strips": strips,
                        "left_out": max(0, len(varying) - MAX_STRIPS_PER_CLAIM)})
    return out


def magnitude_groups(strips: list[tuple[str, dict[int, float]]], factor: float = 20.0) -> list[list]:
    """Split a claim's strips into groups whose largest |value| lie within ``factor`` of each other, so numbers
    of one kind (two arms' losses, two arms' accuracies) share an axis and can be compared by eye."""
    def size(strip):
        return max(abs(v) for v in strip[1].values()) or 1e-12
    groups: list[list] = []
    for strip in sorted(strips, key=size, reverse=True):
        if groups and size(groups[-1][0]) / size(strip) <= factor:
            groups[-1].append(strip)
        else:
            groups.append([strip])
    order = {path: i for i, (path, _) in enumerate(strips)}
    return [sorted(g, key=lambda st: order[st[0]]) for g in groups]


def draw(claims: list[dict], paper: str) -> plt.Figure:
    """One block per claim: a header (its notebook, id and outcome at each seed), then one axis per group of
    comparable numbers, a row per number and a marker per seed."""
    blocks = [(claim, magnitude_groups(claim["strips"])) for claim in claims]
    heights = []
    for _, groups in blocks:
        heights.append(0.5)
        heights += [0.3 * len(g) + 0.35 for g in groups]
    fig = plt.figure(figsize=(7.5, sum(heights) + 0.7))
    grid = fig.add_gridspec(len(heights), 1, height_ratios=heights, hspace=0.35,
                            top=1 - 0.45 / fig.get_figheight(), bottom=0.4 / fig.get_figheight(), left=0.33, right=0.97)
    r = 0
    for claim, groups in blocks:
        header = fig.add_subplot(grid[r, 0])
        header.axis("off")
        outcomes = " · ".join(f"seed {s} {o}" for s, o in sorted(claim["status"].items()))
        more = f" (+{claim['left_out']} more numbers)" if claim["left_out"] else ""
        header.text(-0.45, 0.1, f"{claim['notebook']} · {claim['id']}\n{outcomes}{more}", fontsize=8,
                    fontweight="bold", transform=header.transAxes, va="bottom")
        r += 1
        for group in groups:
            ax = fig.add_subplot(grid[r, 0])
            values = [v for _, vals in group for v in vals.values()]
            lo, hi = min(values), max(values)
            pad = 0.1 * (hi - lo) or 0.05 * abs(hi) or 0.05
            ax.set_xlim(lo - pad, hi + pad)
            if lo - pad <= 0 <= hi + pad:
                ax.axvline(0, color="0.5", lw=0.8, ls="--")
            for row, (_path, vals) in enumerate(group):
                for seed, v in sorted(vals.items()):
                    ax.plot([v], [row], SEED_MARKERS.get(seed, "x"), ms=5, color=f"C{seed}", alpha=0.85)
            ax.set_ylim(len(group) - 0.5, -0.5)
            ax.set_yticks(range(len(group)))
            ax.set_yticklabels([p if len(p) <= 40 else "…" + p[-39:] for p, _ in group], fontsize=7)
            ax.tick_params(axis="x", labelsize=7)
            ax.grid(axis="y", color="0.92")
            for side in ("right", "top"):
                ax.spines[side].set_visible(False)
            r += 1
    handles = [plt.Line2D([], [], marker=SEED_MARKERS[s], ls="", color=f"C{s}", label=f"seed {s}")
               for s in OUTCOME_SEEDS]
    fig.legend(handles=handles, loc="upper right", ncol=len(handles), fontsize=8, frameon=False)
    fig.suptitle(f"{paper}: paper claims across seeds (numbers that vary)", x=0.02, ha="left", fontsize=10)
    return fig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs-dir", default=str(REPO / "runs"), help="root holding smoke/ and seeds/ (default: runs)")
    ap.add_argument("--paper", action="append", help="only this paper (repeatable; default: every paper)")
    args = ap.parse_args(argv)
    runs = Path(args.runs_dir)
    papers = args.paper or sorted(p.name for p in (REPO / "papers").iterdir() if (p / "README.md").is_file())
    for paper in papers:
        claims = collect(runs, paper)
        if not claims:
            print(f"{paper}: fewer than two seeds run (or no varying paper claim); no figure")
            continue
        fig = draw(claims, paper)
        paths = save_figure(fig, runs / "smoke" / paper / "seed_spread")
        plt.close(fig)
        print(f"{paper}: {len(claims)} claims, {sum(len(c['strips']) for c in claims)} strips -> {paths[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
