"""shared.experiment: parameter validation, presets, atomic results files, claims, figures."""
import json
import os

import matplotlib.pyplot as plt
import numpy as np
import pytest

from shared.experiment.ledger import OutcomeRow, asserted_rule, read_outcomes, write_outcomes
from shared.experiment import ParameterError, read_ledger, resolve_config, start_run, validate_params, write_json_atomic

PARAMS = dict(scale="smoke", seed=0, out_dir=None, nproc_per_node=1, nnodes=1, data_dir=None, overrides={})
PRESETS = {"smoke": {"steps": 10, "lr": 1e-3, "model": {"layers": 2, "width": 64}, "note": None},
           "small": {"steps": 100, "lr": 1e-3, "model": {"layers": 4, "width": 128}, "note": None},
           "full": {"steps": 1000, "lr": 1e-4, "model": {"layers": 8, "width": 512}, "note": None}}


def test_unknown_scale_names_valid_choices():
    with pytest.raises(ParameterError, match="smoke, small, full"):
        validate_params(PARAMS | {"scale": "tiny"})


@pytest.mark.parametrize("name,value", [("seed", "0"), ("seed", 1.5), ("seed", True), ("nproc_per_node", 0),
                                        ("out_dir", 3), ("overrides", [1])])
def test_wrong_types_and_values_are_refused(name, value):
    with pytest.raises(ParameterError, match=name):
        validate_params(PARAMS | {name: value})


def test_unknown_parameter_is_refused_with_the_valid_list():
    with pytest.raises(ParameterError, match="valid parameters"):
        validate_params(PARAMS | {"sede": 1})


def test_extra_notebook_parameters():
    out = validate_params(PARAMS | {"n_seeds": 3}, extra={"n_seeds": (int,)})
    assert out["n_seeds"] == 3
    with pytest.raises(ParameterError, match="n_seeds"):
        validate_params(PARAMS | {"n_seeds": "3"}, extra={"n_seeds": (int,)})


def test_overrides_apply_nested_and_unknown_keys_fail():
    cfg = resolve_config(PRESETS, "smoke", {"steps": 20, "lr": 1, "model": {"width": 32}, "note": "x"})
    assert cfg == {"steps": 20, "lr": 1, "model": {"layers": 2, "width": 32}, "note": "x"}
    assert PRESETS["smoke"]["model"]["width"] == 64  # presets are not mutated
    with pytest.raises(ParameterError, match="valid keys under model: layers, width"):
        resolve_config(PRESETS, "smoke", {"model": {"depth": 3}})
    with pytest.raises(ParameterError, match="valid keys: lr, model, note, steps"):
        resolve_config(PRESETS, "smoke", {"stpes": 3})
    with pytest.raises(ParameterError, match="steps"):
        resolve_config(PRESETS, "smoke", {"steps": "many"})


def test_run_writes_results_claims_figures_and_provenance(tmp_path):
    run = start_run("paper_x", "nb", PARAMS | {"out_dir": str(tmp_path / "out"), "seed": 3}, PRESETS)
    assert run.config["steps"] == 10 and run.out_dir == tmp_path / "out"
    prov = json.loads((run.out_dir / "provenance.json").read_text())
    assert prov["status"] == "running" and prov["seed"] == 3
    run.log_metrics({"a": np.float32(1.5), "arr": np.arange(3), "nan": float("nan")})
    merged = run.log_metrics({"b": 2})
    assert merged == {"a": 1.5, "arr": [0, 1, 2], "nan": None, "b": 2}
    run.claim("c1", "x is small", paper_value=1.0, ours=np.float64(0.9), holds=np.bool_(0.9 < 1.0), kind="paper")
    run.claim("c2", "not at this scale", paper_value=None, ours=None, holds=None, kind="paper")
    with pytest.raises(TypeError, match="holds must be a bool"):
        run.claim("c3", "typed in", paper_value=1, ours=1, holds="yes", kind="paper")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    paths = run.save_figure(fig, "line")
    assert [p.suffix for p in paths] == [".png", ".svg"] and all(p.stat().st_size > 0 for p in paths)
    counts = run.finish()
    assert counts == {"holds": 1, "fails": 0, "not testable at this scale": 1}
    claims = json.loads((run.out_dir / "claims.json").read_text())
    assert [c["status"] for c in claims] == ["holds", "not testable at this scale"]
    assert claims[0]["scale"] == "smoke"
    prov = json.loads((run.out_dir / "provenance.json").read_text())
    assert prov["status"] == "finished" and prov["wall_time_s"] >= 0
    assert prov["packages"]["torch"] and "commit" in prov["git"] and prov["device"]["cpu_count"]


def test_a_rerun_drops_stale_claims(tmp_path):
    params = PARAMS | {"out_dir": str(tmp_path)}
    start_run("p", "nb", params, PRESETS).claim("old", "s", 1, 1, True, kind="sanity")
    start_run("p", "nb", params, PRESETS)
    assert not (tmp_path / "claims.json").exists()


def test_atomic_json_leaves_no_partial_file_on_error(tmp_path):
    path = tmp_path / "m.json"
    write_json_atomic(path, {"ok": 1})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


LEDGER_HEAD = ("# P\n\n## Claims\n\n| id | kind | central | claim | notebook | paper predicts | threshold |\n"
               "|---|---|---|---|---|---|---|\n")


def test_read_ledger(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(LEDGER_HEAD + "| `a1` | paper | yes | loss falls | `train` | holds | > 0.1 (paper, Table 2) |\n"
                      "| b | sanity | no | data sized | figs | holds | |\n\n## Other\n")
    rows = read_ledger(readme)
    assert [(r.id, r.kind, r.central, r.notebook) for r in rows] == [("a1", "paper", True, "train"),
                                                                      ("b", "sanity", False, "figs")]
    for bad, match in [("| a | guess | no | c | n | holds | t |", "kind"),
                       ("| a | method | yes | c | n | holds | t |", "only a paper claim can be central"),
                       ("| a | paper | no | c | n | holds | |", "threshold"),
                       ("| a | paper | maybe | c | n | holds | t |", "maybe")]:
        readme.write_text(LEDGER_HEAD + bad + "\n")
        with pytest.raises(ValueError, match=match):
            read_ledger(readme)


def test_outcomes_table_round_trips_and_asserts_paper_claims_only_at_every_seed(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(LEDGER_HEAD + "| a | paper | yes | c | n | holds | t |\n\n## Other\n\ntext\n")
    rows = [OutcomeRow("a", "paper", seeds, asserted_rule("paper", seeds)) for seeds in
            [("holds", "holds", "holds"), ("holds", "fails", "holds"), ("holds", "not run", "holds")]]
    assert [r.asserted for r in rows] == [True, False, False]
    assert asserted_rule("method", ("holds", "not run", "not run")) and not asserted_rule("sanity", ("n/a",) * 3)
    write_outcomes(readme, rows)
    write_outcomes(readme, rows[:1])        # rewriting replaces the section, keeps the rest
    assert read_outcomes(readme) == rows[:1]
    text = readme.read_text()
    assert text.count("## Outcomes at smoke scale") == 1 and "## Other" in text and read_ledger(readme)


def test_claim_needs_a_kind_and_only_paper_claims_are_central(tmp_path):
    run = start_run("p", "nb", PARAMS | {"out_dir": str(tmp_path)}, PRESETS)
    with pytest.raises(TypeError):
        run.claim("a", "s", 1, 1, True)                                   # kind is required
    with pytest.raises(ValueError, match="kind"):
        run.claim("a", "s", 1, 1, True, kind="vibes")
    with pytest.raises(ValueError, match="central"):
        run.claim("a", "s", 1, 1, True, kind="sanity", central=True)
    run.claim("a", "s", 1, 1, True, kind="paper", central=True, threshold="> 0 (paper)")
    saved = json.loads((tmp_path / "claims.json").read_text())[0]
    assert (saved["kind"], saved["central"], saved["threshold"]) == ("paper", True, "> 0 (paper)")


def test_sibling_dir_points_to_another_notebook_of_the_paper(tmp_path):
    first = start_run("p", "01_a", PARAMS | {"out_dir": str(tmp_path / "01_a")}, PRESETS)
    second = start_run("p", "02_b", PARAMS | {"out_dir": str(tmp_path / "02_b")}, PRESETS)
    assert second.sibling_dir("01_a") == first.out_dir
    with pytest.raises(FileNotFoundError, match="run that notebook first"):
        second.sibling_dir("00_missing")


def test_launch_parameters_are_validated_and_handed_to_the_launcher(tmp_path, monkeypatch):
    assert validate_params(PARAMS)["launcher"] == "local" and validate_params(PARAMS)["rdzv_endpoint"] is None
    with pytest.raises(ParameterError, match="rdzv_endpoint"):
        validate_params(PARAMS | {"nnodes": 4})                       # several nodes need a rendezvous
    with pytest.raises(ParameterError, match="host:port"):
        validate_params(PARAMS | {"nnodes": 2, "rdzv_endpoint": "node0"})
    with pytest.raises(ParameterError, match="launcher"):
        validate_params(PARAMS | {"launcher": "kubernetes"})
    assert validate_params(PARAMS | {"nnodes": 4, "launcher": "slurm"})["nnodes"] == 4
    monkeypatch.setenv("SHARED_LAUNCHER", "slurm")                  # left by an earlier notebook
    start_run("p", "nb", PARAMS | {"out_dir": str(tmp_path / "a"), "nnodes": 2, "rdzv_endpoint": "node0:29500"},
              PRESETS)
    assert os.environ["SHARED_RDZV_ENDPOINT"] == "node0:29500" and "SHARED_LAUNCHER" not in os.environ
    start_run("p", "nb", PARAMS | {"out_dir": str(tmp_path / "b")}, PRESETS)
    assert "SHARED_RDZV_ENDPOINT" not in os.environ
