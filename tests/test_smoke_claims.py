"""After the smoke run (`make test` runs it first), every claim a paper README marks 'yes' at smoke
scale holds in that run, and every notebook finished and wrote its results files."""
import json
from pathlib import Path

import pytest

from shared.experiment import read_ledger

REPO = Path(__file__).resolve().parents[1]
RUNS = REPO / "runs" / "smoke"
NOTEBOOKS = sorted(p for p in (REPO / "papers").glob("*/*.ipynb") if ".ipynb_checkpoints" not in p.parts)
ROWS = [(readme.parent.name, row) for readme in sorted((REPO / "papers").glob("*/README.md"))
        for row in read_ledger(readme)]
HOW = "run the notebooks first: `make reproduce` or `python ci/run_notebooks.py --scale smoke`"

pytestmark = pytest.mark.smoke


def run_dir(paper: str, notebook: str) -> Path:
    return RUNS / paper / notebook


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[f"{p.parent.name}/{p.stem}" for p in NOTEBOOKS])
def test_notebook_finished_with_results(path):
    d = run_dir(path.parent.name, path.stem)
    prov = d / "provenance.json"
    assert prov.exists(), f"no smoke run of {path.parent.name}/{path.stem}; {HOW}"
    assert json.loads(prov.read_text())["status"] == "finished", f"{d} did not finish; see {d / (path.stem + '.ipynb')}"
    assert (d / "metrics.json").exists() and (d / "claims.json").exists()
    assert list((d / "figures").glob("*.png")), "a notebook regenerates at least one figure"


@pytest.mark.parametrize("paper,row", ROWS, ids=[f"{p}:{r.id}" for p, r in ROWS])
def test_ledger_claim_matches_the_smoke_run(paper, row):
    claims_file = run_dir(paper, row.notebook) / "claims.json"
    assert claims_file.exists(), f"no claims from {paper}/{row.notebook}; {HOW}"
    claims = {c["id"]: c for c in json.loads(claims_file.read_text())}
    assert row.id in claims, f"{paper}/{row.notebook} recorded no claim {row.id!r}; it recorded {sorted(claims)}"
    claim = claims[row.id]
    if row.expected_at_smoke == "yes":
        assert claim["holds"] is True, (f"{paper}:{row.id} expected to hold at smoke scale but {claim['status']}: "
                                        f"paper {claim['paper_value']}, ours {claim['ours']}")
