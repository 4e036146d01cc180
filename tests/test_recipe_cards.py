"""Recipe cards (``## Recipe`` in each paper README) against the full presets: a card and a preset
cannot drift apart (shared.preflight.recipe_card), and the preflight shows each value with its source."""
from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from shared.experiment import NotebookPresets
from shared.preflight.recipe_card import check_card, is_exempt, leaves, lookup, paper_card, parse_value, read_card, same_value
from shared.preflight import format_report, preflight
from shared.utils.config import StrictConfig

PAPERS_DIR = Path(__file__).resolve().parents[1] / "papers"
PAPERS = sorted(p.name for p in PAPERS_DIR.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


@pytest.mark.parametrize("paper", PAPERS)
def test_card_matches_full_presets(paper):
    card = paper_card(paper)
    presets = importlib.import_module(f"papers.{paper}.scales").NOTEBOOKS
    problems = check_card(card, presets)
    assert not problems, f"papers/{paper}/README.md recipe card vs scales.py:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("paper", PAPERS)
def test_preflight_shows_sourced_values(paper):
    report = preflight(paper)
    card = paper_card(paper)
    for notebook, values in report["recipe"].items():
        rows = [r for r in card if notebook in r.notebooks]
        assert [v["key"] for v in values] == [r.key for r in rows]
        for v, r in zip(values, rows):
            assert v["status"] == r.status and v["source"] == r.source and same_value(v["value"], r.ours)
    text = format_report(report, show_config=True)
    assert f"recipe {next(iter(report['recipe']))}:" in text
    assert not [w for w in report["warnings"] if "recipe card" in w]


# ----------------------------------------------------------------------------- the card format itself
from dataclasses import dataclass, field  # noqa: E402


@dataclass
class _Train(StrictConfig):
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.95)
    log_every: int = 10


@dataclass
class _Spec(StrictConfig):
    train: _Train = field(default_factory=_Train)
    model: str = "gpt2-small"
    train_dir: str = "{data_dir}/train"
    seeds: tuple[int, ...] = (0,)


PRESETS = {"nb": NotebookPresets(_Spec, {"full": {"train": {"lr": 6e-4, "betas": [0.9, 0.95], "log_every": 10},
                                                  "model": "gpt2-small", "train_dir": "{data_dir}/train",
                                                  "seeds": [0, 1, 2]}})}
HEADER = "| notebook | key | ours | source value | status | source |\n|---|---|---|---|---|---|\n"


def _card(tmp_path, rows: str, extra: str = ""):
    readme = tmp_path / "README.md"
    readme.write_text("# paper\n\n## Recipe\n\nIntro.\n\n" + HEADER + rows + "\n" + extra + "\n## Claims\n| a |\n")
    return read_card(readme)


GOOD = ("| nb | train.lr | 6e-4 | 6e-4 | sourced | paper Table 2 |\n"
        "| nb | train.betas | `[0.9, 0.95]` | (0.9, 0.95) | sourced | paper §3 |\n"
        "| nb | model | gpt2-small | gpt2-medium | deviates | paper §3; one node cannot hold it |\n"
        "| nb | seeds | [0, 1, 2] | - | assumed | the paper gives no seed count |\n")


def test_a_good_card_has_no_problems(tmp_path):
    card = _card(tmp_path, GOOD)
    assert [r.status for r in card] == ["sourced", "sourced", "deviates", "assumed"]
    assert card[1].ours == [0.9, 0.95] and card[3].source_value is None
    assert check_card(card, PRESETS) == []


def test_second_table_in_the_section_is_read(tmp_path):
    card = _card(tmp_path, GOOD.split("\n", 1)[1], extra="### model\n\n" + HEADER + GOOD.split("\n", 1)[0] + "\n")
    assert {r.key for r in card} == {"train.lr", "train.betas", "model", "seeds"}


@pytest.mark.parametrize("edit, expected", [
    (("| 6e-4 | 6e-4 | sourced", "| 1e-4 | 1e-4 | sourced"), "the card says 0.0001, the nb full preset has 0.0006"),
    (("| 6e-4 | 6e-4 | sourced", "| 6e-4 | 3e-4 | sourced"), "marked sourced but the source value"),
    (("gpt2-medium | deviates", "gpt2-small | deviates"), "marked deviates but ours equals"),
    (("| nb | seeds |", "| nb | seed |"), "not in the nb preset"),
    (("| nb | seeds |", "| other | seeds |"), "no notebook 'other'"),
    (("| nb | train.lr |", "| nb | train.learning_rate |"), "without a recipe row: train.lr"),
])
def test_each_disagreement_is_named(tmp_path, edit, expected):
    card = _card(tmp_path, GOOD.replace(*edit))
    problems = check_card(card, PRESETS)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize("row, expected", [
    ("| nb | seeds | [0] | - | guessed | x |", "status 'guessed'"),
    ("| nb | seeds | [0] | - | assumed |  |", "source column is empty"),
    ("| nb | seeds | [0] | [0] | assumed | x |", "an assumed row has '-'"),
    ("| nb | seeds | [0] | - | sourced | x |", "a sourced or deviating row states"),
    ("| nb | seeds | [0] | - | assumed |", "has 5 cells"),
])
def test_malformed_rows_are_refused(tmp_path, row, expected):
    with pytest.raises(ValueError, match=expected):
        _card(tmp_path, row + "\n")


def test_no_section_is_an_error(tmp_path):
    (tmp_path / "README.md").write_text("# paper\n")
    with pytest.raises(ValueError, match="no '## Recipe' section"):
        read_card(tmp_path / "README.md")


def test_values_paths_and_exemptions():
    assert parse_value("`5e-4`") == 5e-4 and parse_value("70_000") == 70000 and parse_value("None") is None
    assert parse_value("adamw") == "adamw" and parse_value("(1, 2)") == [1, 2] and parse_value("true") is True
    assert same_value(128, 128.0) and not same_value(True, 1) and not same_value([1, 2], [1, 2, 3])
    config = {"a": {"b": [{"c": 1}, {"c": 2}]}, "d": []}
    assert lookup(config, "a.b[1].c") == 2
    with pytest.raises(KeyError, match=r"no item \[2\]"):
        lookup(config, "a.b[2].c")
    assert list(leaves(config)) == [("a.b[0].c", 1), ("a.b[1].c", 2), ("d", [])]
    assert is_exempt("train.log_every", 5) and is_exempt("data.glue_dir", None) and is_exempt("x", "{data_dir}/c4")
    assert not is_exempt("train.lr", 1e-3)


def test_flavour_rows_read_the_registry(tmp_path):
    card = _card(tmp_path, GOOD + "| flavour | bert-base.n_layer | 12 | 12 | sourced | Devlin et al. 2019 §3 |\n"
                 "| flavour | bert-base.d_model | 1024 | 768 | deviates | x |\n")
    problems = check_card(card, PRESETS)
    assert problems == ["flavour / bert-base.d_model: the card says 1024, the flavour registry has 768"]
