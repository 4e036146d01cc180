"""Write each paper README's '## Outcomes at smoke scale' table from the smoke runs at seeds 0, 1, 2.

    python ci/claim_outcomes.py            # print the tables
    python ci/claim_outcomes.py --write    # and replace them in papers/*/README.md
    make seeds                             # runs seeds 1 and 2, then this with --write

Seed 0 is read from ``runs/smoke/`` (what ``make test`` writes), seeds 1 and 2 from
``runs/seeds/seed<N>/smoke/``. A run whose provenance names another seed, or that did not finish,
counts as ``not run``. A ``paper`` claim is asserted by the tests only when it held at all three
seeds (``shared.experiment.ledger.asserted_rule``); the outcome is recorded, never chosen.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from shared.experiment.provenance import claims_ledger_digest  # noqa: E402
from shared.experiment.ledger import (  # noqa: E402
    OUTCOME_SEEDS,
    OutcomeRow,
    asserted_rule,
    read_ledger,
    render_outcomes,
    write_outcomes,
)


def seed_runs_dir(runs: Path, seed: int) -> Path:
    """Where the smoke run at ``seed`` lives under ``runs``."""
    return runs / "smoke" if seed == 0 else runs / "seeds" / f"seed{seed}" / "smoke"


def outcome(runs: Path, seed: int, paper: str, notebook: str, claim_id: str) -> str:
    """holds / fails / n/a (not testable at smoke) / not run, for one claim at one seed."""
    d = seed_runs_dir(runs, seed) / paper / notebook
    try:
        prov = json.loads((d / "provenance.json").read_text())
        claims = {c["id"]: c for c in json.loads((d / "claims.json").read_text())}
    except (FileNotFoundError, json.JSONDecodeError):
        return "not run"
    if prov.get("status") != "finished" or prov.get("seed") != seed or claim_id not in claims:
        return "not run"
    return {True: "holds", False: "fails", None: "n/a"}[claims[claim_id]["holds"]]


def runs_note(readme: Path, runs: Path) -> str:
    """Which code and which claims ledger the runs read here came from: 'Runs read: seed 0 at <commit>, ...;
    every run recorded this README's claims ledger' (or where it differs: a threshold changed after the run)."""
    paper = readme.parent.name
    commits, stale, unrecorded = {}, [], []
    digest = claims_ledger_digest(paper, readme.parent.parent)
    for seed in OUTCOME_SEEDS:
        for prov_file in sorted(seed_runs_dir(runs, seed).glob(f"{paper}/*/provenance.json")):
            try:
                prov = json.loads(prov_file.read_text())
            except json.JSONDecodeError:
                continue
            if prov.get("seed") != seed or prov.get("status") != "finished":
                continue
            git = prov.get("git") or {}
            tag = (git.get("commit") or "unknown")[:7] + (" (uncommitted changes)" if git.get("dirty") else "")
            commits.setdefault(seed, set()).add(tag)
            where = f"seed {seed} {prov_file.parent.name}"
            if "claims_ledger" not in prov:
                unrecorded.append(where)
            elif prov["claims_ledger"] != digest:
                stale.append(where)
    if not commits:
        return ""
    text = "Runs read: " + "; ".join(f"seed {s} at {', '.join(sorted(c))}" for s, c in sorted(commits.items())) + "."
    if stale:
        text += f" The claims ledger differs from the one these runs recorded: {', '.join(stale)}."
    if unrecorded:
        text += f" Runs from before the ledger's digest was recorded: {', '.join(unrecorded)}."
    if not stale and not unrecorded:
        text += f" Every run recorded this README's claims ledger (digest {digest})."
    return text


def paper_outcomes(readme: Path, runs: Path) -> list[OutcomeRow]:
    paper = readme.parent.name
    rows = []
    for row in read_ledger(readme):
        seeds = tuple(outcome(runs, s, paper, row.notebook, row.id) for s in OUTCOME_SEEDS)
        rows.append(OutcomeRow(row.id, row.kind, seeds, asserted_rule(row.kind, seeds)))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs-dir", type=Path, default=REPO / "runs")
    ap.add_argument("--paper", action="append", help="only this paper (repeatable)")
    ap.add_argument("--write", action="store_true", help="replace the tables in the READMEs")
    args = ap.parse_args(argv)
    readmes = sorted((REPO / "papers").glob("*/README.md"))
    if args.paper:
        unknown = set(args.paper) - {r.parent.name for r in readmes}
        if unknown:
            sys.exit(f"unknown paper(s) {sorted(unknown)}; have {sorted(r.parent.name for r in readmes)}")
        readmes = [r for r in readmes if r.parent.name in args.paper]
    for readme in readmes:
        rows = paper_outcomes(readme, args.runs_dir)
        note = runs_note(readme, args.runs_dir)
        print(f"# {readme.parent.name}\n{render_outcomes(rows, note)}\n")
        if args.write:
            write_outcomes(readme, rows, note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
