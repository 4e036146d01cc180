"""The full-scale rehearsal (ci/rehearsal.py, `ci/run_notebooks.py --scale full --rehearse`): its parameters and
its check of a run folder; and, after `make test` ran it, that every rehearsed notebook finished with each training
run launched on 2 nodes (or as a job of a pool) and at least one preempted and resumed."""
import importlib
import json
from pathlib import Path

import pytest
from conftest import load_ci_module

rehearsal = load_ci_module("rehearsal")

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "runs" / "full-rehearsal" / "run_notebooks.json"
REHEARSED = sorted((p.parent.name, nb) for p in (REPO / "papers").glob("*/rehearsal.py")
                   for nb in rehearsal._overrides_of(p.parent.name))


def test_rehearsed_notebooks_exist_and_their_overrides_build_the_full_spec():
    assert REHEARSED, "no paper has a rehearsal"
    for paper, notebook in REHEARSED:
        assert (REPO / "papers" / paper / f"{notebook}.ipynb").is_file(), (paper, notebook)
        presets = importlib.import_module(f"papers.{paper}.scales").NOTEBOOKS[notebook]
        presets.build("full", rehearsal._overrides_of(paper)[notebook])   # raises on a bad override


def test_params_put_both_nodes_on_this_machine_and_merge_overrides(tmp_path, monkeypatch):
    paper, notebook = REHEARSED[0]
    monkeypatch.setattr(rehearsal, "data_dir", lambda p, root: root / p / "_data_dir")
    params = rehearsal.params(paper, notebook, tmp_path, {"seed": 3, "overrides": {"extra": 1}})
    assert (params["nnodes"], params["nproc_per_node"], params["launcher"]) == (2, 1, "localhost")
    assert params["seed"] == 3 and params["data_dir"] == str(tmp_path / paper / "_data_dir")
    assert params["overrides"]["extra"] == 1
    assert all(params["overrides"][k] == v for k, v in rehearsal._overrides_of(paper)[notebook].items())
    assert rehearsal._merge({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}) == {"a": {"b": 1, "c": 3}}


def _run(folder: Path, nodes=(0, 1), crashed_at: int | None = 2, steps=(1, 2, 3, 4)) -> None:
    (folder / "logs").mkdir(parents=True)
    (folder / "launch_config.json").write_text("{}")
    for k in nodes:
        (folder / "logs" / f"launch.node{k}.log").write_text("")
    if crashed_at is not None:
        (folder / "rehearsal_crashed").write_text(f"{crashed_at}\n")
    (folder / "metrics.jsonl").write_text("".join(json.dumps({"kind": "train", "step": s}) + "\n" for s in steps))


def test_verify_reads_nodes_preemption_and_resume(tmp_path):
    _run(tmp_path / "ok" / "a")
    _run(tmp_path / "ok" / "b", crashed_at=None)
    report = rehearsal.verify(tmp_path / "ok")
    assert (report["runs"], report["two_nodes"], report["resumed"]) == (2, 2, 1)
    assert report["not_preempted"] == ["b"] and report["problems"] == []
    _run(tmp_path / "bad" / "a", nodes=(0,), crashed_at=4)
    problems = rehearsal.verify(tmp_path / "bad")["problems"]
    assert any("not one per node" in p for p in problems) and any("no later step" in p for p in problems)
    assert rehearsal.verify(tmp_path / "empty")["problems"] == ["no training run was launched (under torchrun or as a job)"]
    assert rehearsal.verify(tmp_path / "empty", launches=False)["problems"] == []     # a figure notebook
    job = tmp_path / "jobs" / "run0"
    _run(job, nodes=())
    (job / "logs" / "job.log").write_text("=== attempt 0\n=== attempt 1\n")
    (job / "job_done.json").write_text(json.dumps({"attempts": 2}))
    report = rehearsal.verify(tmp_path / "jobs")
    assert (report["runs"], report["jobs"], report["two_nodes"], report["resumed"]) == (1, 1, 0, 1)
    assert report["problems"] == []
    (job / "job_done.json").write_text(json.dumps({"attempts": 1}))
    assert any("not started again" in p for p in rehearsal.verify(tmp_path / "jobs")["problems"])
    for k in (0, 1):                        # a pool's jobs must have run on both nodes
        run = tmp_path / "pool" / f"run{k}"
        _run(run, nodes=())
        (run / "logs" / "job.log").write_text("=== attempt 0 (node node0, slot 0, CUDA_VISIBLE_DEVICES=None) ===\n"
                                              "=== attempt 1 (node node0, slot 0, CUDA_VISIBLE_DEVICES=None) ===\n")
        (run / "job_done.json").write_text(json.dumps({"attempts": 2}))
    report = rehearsal.verify(tmp_path / "pool")
    assert report["job_nodes"] == ["node0"] and any("not on all 2" in p for p in report["problems"])
    for name, crashed in (("first", 2), ("second", None)):      # kinds: the second is of the first's kind
        _run(tmp_path / "kinds" / name, crashed_at=crashed)
        (tmp_path / "kinds" / name / "launch_config.json").write_text(json.dumps({"arm": "x", "lr": len(name)}))
    kinds = tmp_path / "kinds" / "_rehearsal_kinds"
    kinds.mkdir()
    (kinds / rehearsal.run_kind({"arm": "x"}, ["arm"])).write_text(str((tmp_path / "kinds" / "first").resolve()))
    report = rehearsal.verify(tmp_path / "kinds", kind_keys=["arm"])
    assert (report["resumed"], report["same_kind"], report["not_preempted"]) == (1, 1, [])
    assert rehearsal.verify(tmp_path / "kinds")["not_preempted"] == ["second"]     # without kinds
    (tmp_path / "tokenizer").mkdir()
    (tmp_path / "tokenizer" / "preflight.json").write_text(json.dumps({"runs": []}))
    assert rehearsal.verify(tmp_path / "tokenizer")["problems"] == []          # it plans no training run


@pytest.mark.smoke
def test_every_rehearsed_notebook_ran_on_two_nodes_and_resumed():
    assert RESULTS.exists(), "no rehearsal results: run `python ci/run_notebooks.py --scale full --rehearse`"
    done = {(n["paper"], n["name"]): n for n in json.loads(RESULTS.read_text())["notebooks"]}
    for key in REHEARSED:
        assert key in done, f"{key} was not rehearsed"
        entry = done[key]
        assert entry["status"] == "ok", f"{key}: {entry['error']}"
        r = entry["rehearsal"]
        if r.get("planned") == 0 or not rehearsal.launches(*key):   # trains nothing at full scale (a tokenizer,
            continue                                                  # figures, in-process timings)
        assert r["runs"] >= 1 and r["two_nodes"] + r.get("jobs", 0) == r["runs"] and r["resumed"] >= 1, (key, r)
