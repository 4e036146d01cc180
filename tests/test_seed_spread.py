"""ci/seed_spread.py: which numbers of which claims are drawn across seeds, and the gallery's block."""
from __future__ import annotations

import json
from pathlib import Path

from conftest import load_ci_module

spread = load_ci_module("seed_spread")


def write_run(runs: Path, seed: int, paper: str, notebook: str, claims: list[dict], status: str = "finished",
              prov_seed: int | None = None) -> None:
    d = (runs / "smoke" if seed == 0 else runs / "seeds" / f"seed{seed}" / "smoke") / paper / notebook
    d.mkdir(parents=True, exist_ok=True)
    (d / "provenance.json").write_text(json.dumps({"status": status, "seed": seed if prov_seed is None else prov_seed}))
    (d / "claims.json").write_text(json.dumps(claims))


def claim(cid: str, ours, kind: str = "paper", holds=True) -> dict:
    return {"id": cid, "kind": kind, "ours": ours, "holds": holds}


def test_numeric_leaves_flattens_and_drops_bools_and_text():
    leaves = spread.numeric_leaves({"a": {"b": 1.5, "c": [2, True, "x"]}, "d": float("nan"), "e": None})
    assert leaves == {"a.b": 1.5, "a.c[0]": 2.0}
    assert spread.numeric_leaves(0.25) == {"value": 0.25}
    assert spread.parent("a.b[2].c") == "a.b[2]" and spread.parent("x") == ""


def test_collect_draws_varying_numbers_and_their_float_siblings_only(tmp_path):
    runs = tmp_path / "runs"
    for seed, (bio, gen) in enumerate([(0.52, 0.29), (0.49, 0.27), (0.54, 0.28)]):
        write_run(runs, seed, "toy", "01_nb", [
            # "general" is deterministic (same at every seed) but is the other arm: drawn; "n" is a count: not drawn
            claim("wins", {"biomedical": bio, "general": 0.3, "n": 54}, holds=seed != 1),
            claim("guard", {"x": bio}, kind="sanity"),                  # not a paper claim
            claim("constant", {"a": 1.0, "b": 2.0}),                    # nothing varies
        ])
        write_run(runs, seed, "toy", "02_nb", [claim("other", gen)])
    got = spread.collect(runs, "toy")
    assert [(c["notebook"], c["id"]) for c in got] == [("01_nb", "wins"), ("02_nb", "other")]
    wins = got[0]
    assert [p for p, _ in wins["strips"]] == ["biomedical", "general"]
    assert wins["strips"][0][1] == {0: 0.52, 1: 0.49, 2: 0.54}
    assert wins["status"] == {0: "holds", 1: "fails", 2: "holds"}
    fig = spread.draw(got, "toy")
    assert len(fig.axes) == 4            # two headers, one shared axis per claim (values of like size)
    spread.plt.close(fig)


def test_collect_skips_unfinished_and_other_seed_runs(tmp_path):
    runs = tmp_path / "runs"
    write_run(runs, 0, "toy", "nb", [claim("c", 1.0)])
    write_run(runs, 1, "toy", "nb", [claim("c", 2.0)], status="failed")
    write_run(runs, 2, "toy", "nb", [claim("c", 3.0)], prov_seed=0)      # a seed-0 run copied to the wrong place
    assert spread.collect(runs, "toy") == []
    write_run(runs, 1, "toy", "nb", [claim("c", 2.0)])
    assert [c["strips"] for c in spread.collect(runs, "toy")] == [[("value", {0: 1.0, 1: 2.0})]]


def test_magnitude_groups_keep_comparable_numbers_together():
    strips = [("loss_a", {0: 2.4}), ("count", {0: 900.0}), ("loss_b", {0: 2.8}), ("gap", {0: 0.01})]
    groups = spread.magnitude_groups(strips)
    assert [[p for p, _ in g] for g in groups] == [["count"], ["loss_a", "loss_b"], ["gap"]]


def test_gallery_block_draws_fresh_and_removes_stale_figures(tmp_path):
    gallery = load_ci_module("build_gallery")
    runs = tmp_path / "runs"
    for seed in (0, 1):
        write_run(runs, seed, "toy", "nb", [claim("c", {"arm": 1.0 + seed, "other": 0.5})])
    paper_dir = runs / "smoke" / "toy"
    block = gallery.seed_spread_block(runs, paper_dir)
    assert "toy/seed_spread.png" in block and (paper_dir / "seed_spread.png").is_file()
    (runs / "seeds").rename(tmp_path / "moved")                       # the other seeds are gone: no stale figure
    assert gallery.seed_spread_block(runs, paper_dir) == ""
    assert not list(paper_dir.glob("seed_spread.*"))
