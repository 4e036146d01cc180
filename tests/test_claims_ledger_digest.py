"""Each run records a digest of its paper's claims ledger, and ci/claim_outcomes.py says under the outcomes table
which commits the runs came from and whether a claim's threshold changed after they ran."""
from __future__ import annotations

import json
from pathlib import Path

from conftest import load_ci_module

from shared.experiment.provenance import claims_ledger_digest

claim_outcomes = load_ci_module("claim_outcomes")

LEDGER = """# Toy

## Claims

| id | kind | central | claim | notebook | paper predicts | threshold |
|---|---|---|---|---|---|---|
| `a` | paper | yes | A beats B | 01_x | holds | A > B at every seed (paper: direction) |

Text after the table.

## Outcomes at smoke scale
"""


def _paper(tmp_path: Path, text: str) -> Path:
    (tmp_path / "papers" / "toy").mkdir(parents=True, exist_ok=True)
    readme = tmp_path / "papers" / "toy" / "README.md"
    readme.write_text(text)
    return readme


def test_the_digest_follows_the_claims_table_only(tmp_path):
    _paper(tmp_path, LEDGER)
    first = claims_ledger_digest("toy", tmp_path / "papers")
    assert first is not None and len(first) == 16
    _paper(tmp_path, LEDGER.replace("Text after the table.", "Other prose."))
    assert claims_ledger_digest("toy", tmp_path / "papers") == first
    _paper(tmp_path, LEDGER.replace("A > B at every seed", "A > B + 0.1 at every seed"))
    assert claims_ledger_digest("toy", tmp_path / "papers") != first
    assert claims_ledger_digest("none", tmp_path / "papers") is None


def _run(runs: Path, seed: int, commit: str, ledger: str | None, dirty: bool = False) -> None:
    d = claim_outcomes.seed_runs_dir(runs, seed) / "toy" / "01_x"
    d.mkdir(parents=True)
    prov = {"seed": seed, "status": "finished", "git": {"commit": commit, "dirty": dirty}}
    if ledger is not None:
        prov["claims_ledger"] = ledger
    (d / "provenance.json").write_text(json.dumps(prov))


def test_the_outcomes_note_names_commits_and_a_changed_ledger(tmp_path):
    readme = _paper(tmp_path, LEDGER)
    digest = claims_ledger_digest("toy", tmp_path / "papers")
    runs = tmp_path / "runs"
    for seed in (0, 1, 2):
        _run(runs, seed, "abcdef1234", digest)
    note = claim_outcomes.runs_note(readme, runs)
    assert note == ("Runs read: seed 0 at abcdef1; seed 1 at abcdef1; seed 2 at abcdef1. Every run recorded this "
                    f"README's claims ledger (digest {digest}).")
    _paper(tmp_path, LEDGER.replace("(paper: direction)", "(calibrated)"))
    assert "differs from the one these runs recorded: seed 0 01_x, seed 1 01_x, seed 2 01_x" in \
        claim_outcomes.runs_note(readme, runs)
    other = tmp_path / "runs2"
    _run(other, 0, "1234567890", None, dirty=True)
    assert claim_outcomes.runs_note(readme, other) == (
        "Runs read: seed 0 at 1234567 (uncommitted changes). Runs from before the ledger's digest was recorded: "
        "seed 0 01_x.")
