"""Every paper notebook: committed clean, parameterised, declares the standard parameters, defines no
models or training loops inline; every paper folder has a README with a well-formed claims ledger."""
import ast
import json
import re
from pathlib import Path

import pytest

from shared.experiment import read_ledger
from shared.experiment.params import STANDARD_PARAMS

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (REPO / "papers").glob("*/*.ipynb") if ".ipynb_checkpoints" not in p.parts)
PAPERS = sorted(p for p in (REPO / "papers").iterdir() if p.is_dir()) if (REPO / "papers").exists() else []
ids = lambda paths: [str(p.relative_to(REPO / "papers")) for p in paths]  # noqa: E731


def code_cells(path: Path) -> list[dict]:
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks under papers/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_committed_without_outputs(path):
    for cell in code_cells(path):
        assert not cell.get("outputs") and cell.get("execution_count") is None, f"{path.name} has outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_first_code_cell_is_tagged_parameters_with_the_standard_names(path):
    first = code_cells(path)[0]
    assert "parameters" in first["metadata"].get("tags", []), "first code cell is not tagged 'parameters'"
    tree = ast.parse("".join(first["source"]))
    names = set()
    for node in tree.body:
        assert isinstance(node, ast.Assign), "the parameters cell holds plain assignments only"
        ast.literal_eval(node.value)  # plain literals only
        names |= {t.id for t in node.targets}
    missing = set(STANDARD_PARAMS) - names
    assert not missing, f"parameters cell lacks {sorted(missing)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids(NOTEBOOKS))
def test_no_models_losses_or_training_loops_inline(path):
    code = "\n".join("".join(c["source"]) for c in code_cells(path))
    for pattern, what in [(r"class \w+\((nn\.|torch\.nn\.)?Module\)", "defines a model"),
                          (r"\.backward\(", "runs backward"), (r"optim\w*\.step\(\)|\bopt\.step\(\)", "steps an optimizer")]:
        assert not re.search(pattern, code), f"{path.name} {what} inline; that belongs in shared/"


@pytest.mark.parametrize("paper", PAPERS, ids=[p.name for p in PAPERS])
def test_each_paper_has_a_readme_with_a_claims_ledger(paper):
    readme = paper / "README.md"
    assert readme.exists(), f"{paper.name} has no README.md"
    rows = read_ledger(readme)
    notebooks = {p.stem for p in paper.glob("*.ipynb")}
    for row in rows:
        assert row.notebook in notebooks, f"claim {row.id} names notebook {row.notebook!r}; have {sorted(notebooks)}"
    assert len({r.id for r in rows}) == len(rows), "duplicate claim ids"
