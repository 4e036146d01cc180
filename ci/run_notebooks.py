#!/usr/bin/env python3
"""Run every paper's notebooks (or a chosen few) with papermill at one scale.

    python ci/run_notebooks.py --scale smoke                       # everything, two at a time
    python ci/run_notebooks.py --paper scaling_inference           # one paper
    python ci/run_notebooks.py --notebook scaling_inference/analytic -p seed 1

Each notebook runs in its own papermill process with one BLAS/OpenMP thread (two notebooks at once
use a 2-core machine better than one notebook with two threads). Executed notebooks and their
results go to ``runs/<scale>/<paper>/<notebook>/``. Within a paper, a notebook named ``NN_name``
waits for every notebook of that paper with a smaller ``NN`` (training before figures); notebooks
without a numeric prefix, or with the same one, are independent. Notebooks whose claims compare
wall-clock times (``RUN_ALONE``) run last, with nothing beside them.

Prints live progress (cell k/n of each running notebook), then a time table, then a failure report
naming each failed notebook and its failing cell's error. Exits 1 if any notebook failed.

    python ci/run_notebooks.py --scale full --rehearse              # the full presets, rehearsed on CPU

``--rehearse`` runs each notebook that has a rehearsal (``papers/<paper>/rehearsal.py``; see
``ci/rehearsal.py``) at scale full, shrunk by preset overrides, on a generated data_dir in the full layout,
on 2 nodes of torchrun on this machine with one preemption per training run (or per kind of run), into
``runs/full-rehearsal/``; it then checks each notebook's launched runs (both nodes, the restart, the
resume) and lists the notebooks without a rehearsal.
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import re
import subprocess
import sys
import time

import yaml
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(Path(__file__).resolve().parent)]

import rehearsal  # noqa: E402

PAPERS = REPO / "papers"
SCALES = ("smoke", "small", "full")
PREFIX = re.compile(r"^(\d+)_")
# notebooks whose claims compare wall-clock times: they run last and alone, since a notebook beside them on the
# same cores shifts their timings (commoncanvas speedups' same-compute control moved 9% with one beside it)
RUN_ALONE = {"commoncanvas/speedups"}


@dataclass
class Job:
    paper: str
    name: str                 # notebook stem, e.g. "01_train"
    path: Path
    status: str = "pending"   # pending | running | ok | failed | skipped
    seconds: float = 0.0
    error: str = ""
    proc: subprocess.Popen | None = field(default=None, repr=False)
    started: float = 0.0
    log_path: Path | None = None
    rehearsal: dict | None = None     # --rehearse: what the rehearsal exercised (ci/rehearsal.verify)

    @property
    def key(self) -> str:
        return f"{self.paper}/{self.name}"

    @property
    def order(self) -> int | None:
        m = PREFIX.match(self.name)
        return int(m.group(1)) if m else None


def discover(papers: list[str] | None, notebooks: list[str] | None, papers_dir: Path = PAPERS) -> list[Job]:
    """Notebooks under papers/<paper>/*.ipynb, filtered by --paper / --notebook."""
    jobs = []
    for path in sorted(papers_dir.glob("*/*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        jobs.append(Job(paper=path.parent.name, name=path.stem, path=path))
    known_papers = sorted({j.paper for j in jobs})
    if papers:
        unknown = sorted(set(papers) - set(known_papers))
        if unknown:
            sys.exit(f"unknown paper(s) {unknown}; papers with notebooks: {', '.join(known_papers)}")
        jobs = [j for j in jobs if j.paper in papers]
    if notebooks:
        chosen = []
        for want in notebooks:
            match = [j for j in jobs if want in (j.key, j.name)]
            if not match:
                sys.exit(f"unknown notebook {want!r}; valid: {', '.join(j.key for j in jobs)}")
            chosen += [j for j in match if j not in chosen]
        jobs = chosen
    return jobs


def parse_value(text: str):
    """'3' -> 3, '0.1' -> 0.1, 'None' -> None, '{"a": 1}' -> dict; anything else stays a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def declared_parameters(path: Path) -> set[str]:
    import papermill
    return set(papermill.inspect_notebook(str(path)).keys())


def blocked_by(job: Job, jobs: list[Job]) -> list[Job]:
    """Notebooks of the same paper with a smaller numeric prefix."""
    if job.order is None:
        return []
    return [j for j in jobs if j.paper == job.paper and j.order is not None and j.order < job.order]


def cell_progress(executed: Path) -> str:
    """'cell k/n' from the papermill-annotated output notebook, which papermill saves at each cell start."""
    try:
        nb = json.loads(executed.read_text())
    except (OSError, ValueError):
        return "starting"
    cells = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    done = sum(c.get("metadata", {}).get("papermill", {}).get("status") == "completed" for c in cells)
    return f"cell {min(done + 1, len(cells))}/{len(cells)}"


def failure_from_notebook(executed: Path) -> str:
    """The failing cell's index, first source line and error, from the executed notebook."""
    try:
        nb = json.loads(executed.read_text())
    except (OSError, ValueError):
        return ""
    code_index = 0
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        code_index += 1
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                src = "".join(cell.get("source", "")).strip().splitlines()
                first = src[0] if src else ""
                tb = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in out.get("traceback", [])]
                tail = "\n".join("      " + line for chunk in tb[-3:] for line in chunk.splitlines()[-6:])
                return (f"code cell {code_index} ({first[:80]!r}): {out.get('ename')}: {out.get('evalue')}\n{tail}")
    return ""


def start(job: Job, args, extra_params: dict, runs_dir: Path) -> None:
    out_dir = runs_dir / job.paper / job.name
    out_dir.mkdir(parents=True, exist_ok=True)
    executed = out_dir / f"{job.name}.ipynb"
    job.log_path = out_dir / "papermill.log"
    params = {"scale": args.scale, "out_dir": str(out_dir), **extra_params}
    env_extra = {}
    if args.rehearse:
        params = {**rehearsal.params(job.paper, job.name, runs_dir, extra_params), "scale": "full",
                  "out_dir": str(out_dir)}
        env_extra = rehearsal.env(job.paper, job.name, out_dir)
    cmd = [sys.executable, "-m", "papermill", str(job.path), str(executed), "--kernel", args.kernel,
           "--cwd", str(job.path.parent), "--no-progress-bar", "--log-output"]
    if args.cell_timeout:
        cmd += ["--execution-timeout", str(args.cell_timeout)]
    for k, v in params.items():       # YAML, not JSON: papermill reads JSON's 1e-05 as a string
        cmd += ["-y", yaml.safe_dump({k: v}, default_flow_style=True, width=float("inf")).strip()]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", MPLBACKEND="Agg", PYTHONUNBUFFERED="1", **env_extra)
    job.status, job.started = "running", time.time()
    job.proc = subprocess.Popen(cmd, stdout=open(job.log_path, "w"), stderr=subprocess.STDOUT, env=env, cwd=REPO)


def finish(job: Job, runs_dir: Path) -> None:
    job.seconds = time.time() - job.started
    executed = runs_dir / job.paper / job.name / f"{job.name}.ipynb"
    if job.proc.returncode == 0:
        job.status = "ok"
        if job.rehearsal is not None:
            job.rehearsal = rehearsal.verify(runs_dir / job.paper / job.name, rehearsal.launches(job.paper, job.name),
                                             rehearsal.preempt_kinds(job.paper, job.name))
            if job.rehearsal["problems"]:
                job.status, job.error = "failed", "rehearsal: " + "; ".join(job.rehearsal["problems"])
        return
    job.status = "failed"
    job.error = failure_from_notebook(executed)
    if not job.error and job.log_path and job.log_path.exists():
        tail = job.log_path.read_text(errors="replace").strip().splitlines()[-8:]
        job.error = "papermill failed before any cell error:\n" + "\n".join("      " + t for t in tail)


def write_summary(path: Path, scale: str, jobs: list[Job], total: float) -> None:
    """Merge this invocation's results into runs/<scale>/run_notebooks.json (read by the gallery)."""
    try:
        previous = {(n["paper"], n["name"]): n for n in json.loads(path.read_text())["notebooks"]}
    except (OSError, ValueError, KeyError):
        previous = {}
    for j in jobs:
        previous[(j.paper, j.name)] = {"paper": j.paper, "name": j.name, "status": j.status,
                                       "seconds": round(j.seconds, 1), "error": j.error,
                                       **({"rehearsal": j.rehearsal} if j.rehearsal is not None else {})}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"scale": scale, "last_wall_time_s": round(total, 1),
                                "notebooks": sorted(previous.values(), key=lambda n: (n["paper"], n["name"]))},
                               indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", default="smoke", choices=SCALES)
    ap.add_argument("--paper", action="append", help="run only this paper's notebooks (repeatable)")
    ap.add_argument("--notebook", action="append", help="run only this notebook: paper/name or name (repeatable)")
    ap.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                    help="pass a parameter to every selected notebook (validated against its parameters cell)")
    ap.add_argument("--jobs", type=int, default=None,
                    help="notebooks at once (default 2 at smoke scale; 1 at small and full, where each "
                         "notebook takes the GPUs it is given)")
    ap.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP threads per notebook (default 1)")
    ap.add_argument("--kernel", default="python3")
    ap.add_argument("--cell-timeout", type=int, default=None, help="seconds per cell before papermill gives up")
    ap.add_argument("--runs-dir", type=Path, default=REPO / "runs")
    ap.add_argument("--papers-dir", type=Path, default=PAPERS, help=argparse.SUPPRESS)
    ap.add_argument("--heartbeat", type=float, default=15.0, help="seconds between progress lines")
    ap.add_argument("--rehearse", action="store_true",
                    help="with --scale full: rehearse the full presets on this machine (ci/rehearsal.py)")
    args = ap.parse_args(argv)
    if args.rehearse and args.scale != "full":
        sys.exit("--rehearse rehearses the full presets: use it with --scale full")

    if args.jobs is None:
        args.jobs = 2 if args.scale == "smoke" else 1
    if args.jobs < 1:
        sys.exit(f"--jobs must be >= 1, got {args.jobs}")
    jobs = discover(args.paper, args.notebook, args.papers_dir)
    if not jobs:
        print(f"no notebooks found under {args.papers_dir}")
        return 0
    jobs.sort(key=lambda j: j.key in RUN_ALONE)          # stable: the timed notebooks last
    extra = {name: parse_value(value) for name, value in args.param}
    for name in ("scale", "out_dir"):
        if name in extra:
            sys.exit(f"-p {name} is set by this script; use --scale / --runs-dir")
    for job in jobs:
        declared = declared_parameters(job.path)
        unknown = sorted(set(extra) - declared)
        if unknown:
            sys.exit(f"{job.key} has no parameter(s) {unknown}; its parameters: {', '.join(sorted(declared))}")

    not_rehearsed = []
    if args.rehearse:
        not_rehearsed = [j.key for j in jobs if not rehearsal.rehearsed(j.paper, j.name)]
        jobs = [j for j in jobs if rehearsal.rehearsed(j.paper, j.name)]
        for job in jobs:
            job.rehearsal = {}
        if not jobs:
            print(f"no notebook to rehearse; without a rehearsal: {', '.join(not_rehearsed)}")
            return 1
    # absolute: papermill runs each notebook in its folder
    runs_dir = args.runs_dir.resolve() / ("full-rehearsal" if args.rehearse else args.scale)
    t0, last_beat = time.time(), 0.0
    print(f"running {len(jobs)} notebook(s) at scale {args.scale!r}, {args.jobs} at a time, "
          f"{args.threads} thread(s) each -> {runs_dir}", flush=True)
    while any(j.status in ("pending", "running") for j in jobs):
        for job in [j for j in jobs if j.status == "running"]:
            if job.proc.poll() is not None:
                finish(job, runs_dir)
                mark = "ok  " if job.status == "ok" else "FAIL"
                print(f"[{mark}] {job.key} in {job.seconds:.1f} s", flush=True)
        for job in [j for j in jobs if j.status == "pending"]:
            deps = blocked_by(job, jobs)
            bad = [d for d in deps if d.status in ("failed", "skipped")]
            if bad:
                job.status, job.error = "skipped", f"needs {', '.join(d.key for d in bad)}, which did not succeed"
                print(f"[skip] {job.key}: {job.error}", flush=True)
        running = [j for j in jobs if j.status == "running"]
        for job in [j for j in jobs if j.status == "pending"]:
            if len(running) >= args.jobs or any(j.key in RUN_ALONE for j in running):
                break
            if job.key in RUN_ALONE and running:      # wait until it can run alone
                break
            if all(d.status == "ok" for d in blocked_by(job, jobs)):
                start(job, args, extra, runs_dir)
                running.append(job)
                print(f"[run ] {job.key}", flush=True)
        now = time.time()
        if running and now - last_beat >= args.heartbeat:
            last_beat = now
            done = sum(j.status in ("ok", "failed", "skipped") for j in jobs)
            status = "; ".join(f"{j.key} {cell_progress(runs_dir / j.paper / j.name / f'{j.name}.ipynb')} "
                               f"({now - j.started:.0f} s)" for j in running)
            print(f"  [{done}/{len(jobs)} done, {now - t0:.0f} s] {status}", flush=True)
        time.sleep(0.5)

    total = time.time() - t0
    width = max(len(j.key) for j in jobs)
    print(f"\n{'notebook':<{width}}  {'status':<7}  seconds")
    for job in sorted(jobs, key=lambda j: -j.seconds):
        print(f"{job.key:<{width}}  {job.status:<7}  {job.seconds:7.1f}")
    print(f"{'total wall time':<{width}}  {'':<7}  {total:7.1f}")
    write_summary(runs_dir / "run_notebooks.json", args.scale, jobs, total)
    if args.rehearse:
        print("\nrehearsal (training runs launched / on 2 nodes / as jobs / preempted and resumed / of a kind "
              "preempted in another run):")
        for job in jobs:
            r = job.rehearsal or {}
            print(f"  {job.key:<{width}}  {r.get('runs', 0)} / {r.get('two_nodes', 0)} / {r.get('jobs', 0)} / "
                  f"{r.get('resumed', 0)} / {r.get('same_kind', 0)}"
                  + (f"  (no preemption: {', '.join(r['not_preempted'])})" if r.get("not_preempted") else ""))
        if not_rehearsed:
            print(f"without a rehearsal ({len(not_rehearsed)}): {', '.join(not_rehearsed)}")
    failed = [j for j in jobs if j.status in ("failed", "skipped")]
    if failed:
        print("\nFAILURES")
        for job in failed:
            print(f"- {job.key} ({job.status}): {job.error}")
            if job.log_path:
                print(f"      log: {job.log_path}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
