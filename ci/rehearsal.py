"""The full-scale rehearsal on CPU: every rehearsed notebook runs its ``full`` preset through the same code
path as on a cluster (``scale="full"``, the preflight, data read from a ``data_dir`` in the full layout,
torchrun with c10d rendezvous on 2 nodes), shrunk only by preset overrides, with one preemption per training
run. ``python ci/run_notebooks.py --scale full --rehearse [--paper P]`` runs it; this module holds its parts.

A paper opts in with ``papers/<paper>/rehearsal.py``::

    NOTEBOOKS = {"01_train": {...}}          # notebook -> preset overrides that shrink its full preset
    UNLAUNCHED = {"02_figures": {}}          # optional: notebooks that launch no run (figures, timings)
    PREEMPT_KINDS = {"01_train": ["train.optimizer"]}   # optional: preempt one run per kind, not every run
    def make_data_dir(root: Path) -> None:   # write a tiny data_dir in the full preset's layout under root

Each rehearsed notebook gets ``scale="full"``, ``overrides`` (the paper's, under any given with ``-p``),
``data_dir`` (built once per paper under ``<runs>/full-rehearsal/<paper>/_data_dir``), ``nnodes=2``,
``nproc_per_node=1`` and ``launcher="localhost"`` (both nodes' torchrun processes on this machine), and runs
with ``SHARED_REHEARSAL_CRASH=1`` (``shared.train.trainer.rehearsal_crash``: every rank exits after the
first periodic checkpoint of each run; torchrun restarts it and it resumes). A notebook listed in
``PREEMPT_KINDS`` names the config keys that make runs take different code paths through a restart; then only
the first run of each kind is preempted (``shared.train.rehearsal_preemption``: a restart costs about 7 s of
the 2 cores, for runs that differ only in values). After the notebook, ``verify`` reads every launched run's
folder: both nodes' logs (or, for a run of a job pool, its job log and a second attempt; the pool's jobs must
have run on both nodes), the crash marker and the run's last step, and, for a run not preempted, whether a run
of its kind was.
"""
from __future__ import annotations

import importlib
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from shared.train.rehearsal_preemption import KIND_KEYS_ENV, KINDS_DIR_ENV, kind_file, run_kind  # noqa: E402

NNODES = 2
ENV = {"SHARED_REHEARSAL_CRASH": "1", "SHARED_MAX_RESTARTS": "1"}
KINDS_DIR = "_rehearsal_kinds"              # in a notebook's out_dir: one file per kind of run preempted
CRASH_MARKER = "rehearsal_crashed"          # shared.train.trainer.REHEARSAL_CRASH_MARKER
JOB_NODE = re.compile(r"^=== attempt \d+ \(node (\S+),", re.MULTILINE)   # shared.train.jobs' attempt lines


def rehearsal_module(paper: str):
    """``papers.<paper>.rehearsal`` or None when the paper has no rehearsal."""
    if not (REPO / "papers" / paper / "rehearsal.py").is_file():
        return None
    return importlib.import_module(f"papers.{paper}.rehearsal")


def _overrides_of(paper: str) -> dict:
    """notebook -> overrides, of the notebooks that launch runs (NOTEBOOKS) and of those that launch none
    (UNLAUNCHED: figure notebooks reading the earlier notebooks' full-scale outputs, in-process timings)."""
    module = rehearsal_module(paper)
    return {} if module is None else {**getattr(module, "UNLAUNCHED", {}), **module.NOTEBOOKS}


def rehearsed(paper: str, notebook: str) -> bool:
    return notebook in _overrides_of(paper)


def preempt_kinds(paper: str, notebook: str) -> list[str] | None:
    """The config keys whose values make a kind of run (one preempted per kind), None: every run preempted."""
    module = rehearsal_module(paper)
    return None if module is None else getattr(module, "PREEMPT_KINDS", {}).get(notebook)


def env(paper: str, notebook: str, out_dir: Path) -> dict[str, str]:
    """The notebook's environment for its rehearsal: ENV, and its kinds of run when it has them."""
    keys = preempt_kinds(paper, notebook)
    if keys is None:
        return dict(ENV)
    return {**ENV, KIND_KEYS_ENV: json.dumps(keys), KINDS_DIR_ENV: str(Path(out_dir).resolve() / KINDS_DIR)}


def launches(paper: str, notebook: str) -> bool:
    """Whether the notebook's rehearsal must launch training runs (it is in NOTEBOOKS, not UNLAUNCHED)."""
    module = rehearsal_module(paper)
    return module is not None and notebook in module.NOTEBOOKS


def data_dir(paper: str, root: Path) -> Path:
    """The paper's rehearsal data_dir under ``root`` (written once; a ``.complete`` file marks it done)."""
    folder = root / paper / "_data_dir"
    if not (folder / ".complete").exists():
        folder.mkdir(parents=True, exist_ok=True)
        rehearsal_module(paper).make_data_dir(folder)
        (folder / ".complete").write_text("")
    return folder


def params(paper: str, notebook: str, root: Path, extra: dict) -> dict:
    """The notebook's parameters for its rehearsal (``extra``: parameters given with ``-p``; their
    ``overrides`` are applied over the paper's)."""
    overrides = _merge(_overrides_of(paper)[notebook], dict(extra.get("overrides") or {}))
    return {**extra, "data_dir": str(data_dir(paper, root)), "overrides": overrides, "nnodes": NNODES,
            "nproc_per_node": 1, "launcher": "localhost"}


def _merge(base: dict, top: dict) -> dict:
    out = json.loads(json.dumps(base))
    for key, value in top.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def launched_runs(out_dir: Path) -> list[Path]:
    """Folders of the training runs the notebook launched under torchrun or as jobs of a pool
    (``shared.train.jobs``); both hold launch_config.json."""
    return sorted(p.parent for p in out_dir.rglob("launch_config.json"))


def planned_runs(out_dir: Path) -> int | None:
    """How many training runs the notebook's own preflight planned (``preflight.json``), None if unknown."""
    try:
        return len(json.loads((out_dir / "preflight.json").read_text())["runs"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def verify(out_dir: Path, launches: bool = True, kind_keys: list[str] | None = None) -> dict:
    """What the rehearsal of one notebook exercised, read from its run folders: {"planned": training runs its
    preflight planned, "runs": n launched, "two_nodes": n with both nodes' logs, "resumed": n preempted and
    finished after the restart, "same_kind": n not preempted because a run of their kind was (``kind_keys``:
    the notebook's PREEMPT_KINDS), "not_preempted": [runs with no periodic checkpoint before their end],
    "jobs": n runs of a job pool, "job_nodes": the nodes they ran on, "problems": [...]}. A notebook whose
    preflight plans no training run (a tokenizer), or one rehearsed with ``launches`` False (UNLAUNCHED), need
    launch none."""
    runs = launched_runs(out_dir)
    planned = planned_runs(out_dir)
    report = {"planned": planned, "runs": len(runs), "two_nodes": 0, "jobs": 0, "resumed": 0, "same_kind": 0,
              "not_preempted": [], "problems": []}
    job_nodes: set[str] = set()
    for run in runs:
        name = str(run.relative_to(out_dir))
        logs = {p.name for p in (run / "logs").glob("launch.*.log")}
        if not logs and (run / "logs" / "job.log").exists():     # one run of a job pool (shared.train.jobs)
            report["jobs"] += 1
            job_nodes.update(JOB_NODE.findall((run / "logs" / "job.log").read_text(errors="replace")))
            if _crash_marker(run).exists() and _attempts(run) < 2:
                report["problems"].append(f"{name}: preempted, but its job was not started again")
        elif {f"launch.node{k}.log" for k in range(NNODES)} <= logs:
            report["two_nodes"] += 1
        else:
            report["problems"].append(f"{name}: node logs {sorted(logs)}, not one per node")
        marker = _crash_marker(run)
        if not marker.exists():
            if kind_keys is not None and _kind_preempted(run, kind_keys, out_dir):
                report["same_kind"] += 1
            else:
                report["not_preempted"].append(name)
            continue
        crashed_at = int(marker.read_text().split()[0])
        steps = _train_steps(marker.parent)
        if steps and max(steps) > crashed_at:
            report["resumed"] += 1
        else:
            report["problems"].append(f"{name}: preempted at step {crashed_at}, but no later step was logged")
    report["job_nodes"] = sorted(job_nodes)
    if report["jobs"] >= NNODES and len(job_nodes) < NNODES:
        report["problems"].append(f"the jobs ran on nodes {sorted(job_nodes)}, not on all {NNODES}")
    if not runs and planned != 0 and launches:
        report["problems"].append("no training run was launched (under torchrun or as a job)")
    return report


def _kind_preempted(run: Path, keys: list[str], out_dir: Path) -> bool:
    """Whether another run of this run's kind was preempted (its kind file names a run with a crash marker)."""
    path = kind_file(run, keys, out_dir / KINDS_DIR)
    if path is None or not path.exists():
        return False
    chosen = Path(path.read_text().strip())
    return chosen != run.resolve() and (chosen / CRASH_MARKER).exists()


def _crash_marker(run: Path) -> Path:
    """The run's crash marker: in its folder, or, for a job that trains several runs one after another, each
    in a subfolder of its own, in the subfolder of the run it interrupted."""
    nested = sorted(run.glob(f"*/{CRASH_MARKER}"))
    return nested[0] if nested and not (run / CRASH_MARKER).exists() else run / CRASH_MARKER


def _attempts(run: Path) -> int:
    try:
        return int(json.loads((run / "job_done.json").read_text())["attempts"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def _train_steps(run: Path) -> list[int]:
    path = run / "metrics.jsonl"
    if not path.exists():
        return []
    steps = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if row.get("kind") == "train" and "step" in row:
            steps.append(int(row["step"]))
    return steps


__all__ = ["ENV", "NNODES", "data_dir", "env", "launched_runs", "launches", "params", "preempt_kinds",
           "rehearsal_module", "rehearsed", "run_kind", "verify"]
