"""After the smoke run (`make test` runs it first): every notebook finished and wrote its results, the
claims each run recorded are exactly its paper's ledger rows (same kind, same central flag), and the
claims the ledger's generated outcomes table asserts hold: `method` / `sanity` claims whenever they
are measured, `paper` claims only when they held at seeds 0, 1 and 2 (see shared/experiment/ledger.py)."""
import json
from pathlib import Path

import pytest

from shared.experiment.ledger import asserted_rule, read_ledger, read_outcomes

REPO = Path(__file__).resolve().parents[1]
RUNS = REPO / "runs" / "smoke"
READMES = sorted((REPO / "papers").glob("*/README.md"))
NOTEBOOKS = sorted(p for p in (REPO / "papers").glob("*/*.ipynb") if ".ipynb_checkpoints" not in p.parts)
ROWS = [(readme.parent.name, row) for readme in READMES for row in read_ledger(readme)]
OUTCOMES = {readme.parent.name: {o.id: o for o in (read_outcomes(readme) or [])} for readme in READMES}
HOW = "run the notebooks first: `make reproduce` or `python ci/run_notebooks.py --scale smoke`"

pytestmark = pytest.mark.smoke


def run_dir(paper: str, notebook: str) -> Path:
    return RUNS / paper / notebook


def recorded_claims(paper: str, notebook: str) -> dict[str, dict]:
    claims_file = run_dir(paper, notebook) / "claims.json"
    assert claims_file.exists(), f"no claims from {paper}/{notebook}; {HOW}"
    return {c["id"]: c for c in json.loads(claims_file.read_text())}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[f"{p.parent.name}/{p.stem}" for p in NOTEBOOKS])
def test_notebook_finished_with_results(path):
    d = run_dir(path.parent.name, path.stem)
    prov = d / "provenance.json"
    assert prov.exists(), f"no smoke run of {path.parent.name}/{path.stem}; {HOW}"
    assert json.loads(prov.read_text())["status"] == "finished", f"{d} did not finish; see {d / (path.stem + '.ipynb')}"
    assert (d / "metrics.json").exists() and (d / "claims.json").exists()
    assert list((d / "figures").glob("*.png")), "a notebook regenerates at least one figure"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[f"{p.parent.name}/{p.stem}" for p in NOTEBOOKS])
def test_every_recorded_claim_is_in_the_ledger(path):
    paper, notebook = path.parent.name, path.stem
    ledger = {r.id for p, r in ROWS if p == paper and r.notebook == notebook}
    unlisted = sorted(set(recorded_claims(paper, notebook)) - ledger)
    assert not unlisted, f"{paper}/{notebook} records claims its README's ledger lacks: {unlisted}"


@pytest.mark.parametrize("paper,row", ROWS, ids=[f"{p}:{r.id}" for p, r in ROWS])
def test_ledger_claim_matches_the_smoke_run(paper, row):
    claims = recorded_claims(paper, row.notebook)
    assert row.id in claims, f"{paper}/{row.notebook} recorded no claim {row.id!r}; it recorded {sorted(claims)}"
    claim = claims[row.id]
    assert (claim["kind"], claim["central"]) == (row.kind, row.central), (
        f"{paper}:{row.id}: the notebook records kind {claim['kind']!r}, central {claim['central']}; "
        f"the ledger says {row.kind!r}, {row.central}")
    outcome = OUTCOMES[paper].get(row.id)
    if row.kind == "paper":
        asserted = outcome is not None and outcome.asserted
    else:
        asserted = claim["holds"] is not None
    if asserted:
        assert claim["holds"] is True, (f"{paper}:{row.id} ({row.kind}) is asserted but {claim['status']}: "
                                        f"paper {claim['paper_value']}, ours {claim['ours']}")


@pytest.mark.parametrize("readme", READMES, ids=[r.parent.name for r in READMES])
def test_each_paper_names_a_central_claim_and_its_outcomes_table_follows_the_rule(readme):
    rows = read_ledger(readme)
    assert any(r.central for r in rows), f"{readme.parent.name}: no claim is marked central"
    outcomes = read_outcomes(readme)
    assert outcomes is not None, f"{readme}: no outcomes table; run `make seeds` (or ci/claim_outcomes.py --write)"
    assert [o.id for o in outcomes] == [r.id for r in rows], "outcomes table rows differ from the ledger; regenerate it"
    for o in outcomes:
        assert o.asserted == asserted_rule(o.kind, o.seeds), f"{o.id}: 'asserted' does not follow the rule; regenerate"
