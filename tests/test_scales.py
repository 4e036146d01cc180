"""Every paper's presets: one ``scales.py`` per paper with notebooks, an entry per notebook, every
scale (``full`` included) built into its typed spec, and one vocabulary of keys across papers."""
from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from shared.experiment import SCALES, NotebookPresets, synonym_keys

PAPERS_DIR = Path(__file__).resolve().parents[1] / "papers"
PAPERS = sorted(p.name for p in PAPERS_DIR.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def _notebooks(paper: str) -> list[str]:
    return sorted(p.stem for p in (PAPERS_DIR / paper).glob("*.ipynb"))


def _scales(paper: str):
    return importlib.import_module(f"papers.{paper}.scales")


@pytest.mark.parametrize("paper", PAPERS)
def test_every_notebook_has_typed_presets(paper):
    scales = _scales(paper)
    notebooks = getattr(scales, "NOTEBOOKS", None)
    assert isinstance(notebooks, dict), f"papers/{paper}/scales.py must define NOTEBOOKS: name -> NotebookPresets"
    missing = sorted(set(_notebooks(paper)) - set(notebooks))
    assert not missing, f"papers/{paper}: notebooks without presets in scales.NOTEBOOKS: {missing}"
    for name, presets in notebooks.items():
        assert isinstance(presets, NotebookPresets), f"{paper}/{name}: expected NotebookPresets"


def _cases():
    for paper in PAPERS:
        for name, _presets in getattr(_scales(paper), "NOTEBOOKS", {}).items():
            for scale in SCALES:
                yield pytest.param(paper, name, scale, id=f"{paper}/{name}/{scale}")


@pytest.mark.parametrize("paper,notebook,scale", list(_cases()))
def test_preset_builds_into_its_spec(paper, notebook, scale):
    presets = _scales(paper).NOTEBOOKS[notebook]
    assert scale in presets.scales, f"{paper}/{notebook} has no {scale!r} preset (every scale, full included)"
    spec = presets.build(scale)
    assert isinstance(spec, presets.spec)
    assert not synonym_keys(presets.scales[scale]), synonym_keys(presets.scales[scale])


def test_synonym_check_catches_renamed_keys():
    assert synonym_keys({"train": {"steps": 3}, "runs": [{"batch_size": 2}]}) == [
        "train.steps (call it max_steps)", "runs[0].batch_size (call it global_batch_size or micro_batch_size)"]
    assert synonym_keys({"train": {"max_steps": 3}}) == []
