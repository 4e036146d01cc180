"""shared.experiment: parameter validation, presets, atomic results files, claims, figures."""
import json

import matplotlib.pyplot as plt
import numpy as np
import pytest

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
    run.claim("c1", "x is small", paper_value=1.0, ours=np.float64(0.9), holds=np.bool_(0.9 < 1.0))
    run.claim("c2", "not at this scale", paper_value=None, ours=None, holds=None)
    with pytest.raises(TypeError, match="holds must be a bool"):
        run.claim("c3", "typed in", paper_value=1, ours=1, holds="yes")
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
    start_run("p", "nb", params, PRESETS).claim("old", "s", 1, 1, True)
    start_run("p", "nb", params, PRESETS)
    assert not (tmp_path / "claims.json").exists()


def test_atomic_json_leaves_no_partial_file_on_error(tmp_path):
    path = tmp_path / "m.json"
    write_json_atomic(path, {"ok": 1})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_read_ledger(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# P\n\n## Claims\n\n| id | claim | notebook | holds at smoke |\n|---|---|---|---|\n"
                      "| `a1` | loss falls | `train` | yes |\n| b | far away | figs | n/a |\n\n## Other\n")
    rows = read_ledger(readme)
    assert [(r.id, r.notebook, r.expected_at_smoke) for r in rows] == [("a1", "train", "yes"), ("b", "figs", "n/a")]
    readme.write_text("# P\n\n## Claims\n\n| id | claim | notebook | holds at smoke |\n|---|---|---|---|\n| a | c | n | maybe |\n")
    with pytest.raises(ValueError, match="maybe"):
        read_ledger(readme)


def test_sibling_dir_points_to_another_notebook_of_the_paper(tmp_path):
    first = start_run("p", "01_a", PARAMS | {"out_dir": str(tmp_path / "01_a")}, PRESETS)
    second = start_run("p", "02_b", PARAMS | {"out_dir": str(tmp_path / "02_b")}, PRESETS)
    assert second.sibling_dir("01_a") == first.out_dir
    with pytest.raises(FileNotFoundError, match="run that notebook first"):
        second.sibling_dir("00_missing")
