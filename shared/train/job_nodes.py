"""Jobs of `shared.train.jobs` on several nodes: every node runs a pool of `slots` processes that claim the
next unfinished job of one list, so a node that finishes early takes more.

    results = run_jobs(jobs, slots=nproc_per_node, nnodes=4, launcher="slurm")    # shared.train.jobs

`run_jobs` with `nnodes` > 1 writes the list (`<jobs' folder>/_nodes/jobs.json`) and starts one pool per node,
`python -m shared.train.job_nodes --jobs FILE --node-rank K`. A pool claims a job by creating
`job_claim.json` in its run_dir (O_EXCL on the shared file system) and refreshes the file's time while the job
runs; a claim is stale, and taken over, when its time is older than LEASE_S (180 s) or its process is gone on
this host (a node killed with its jobs, a launch that crashed). The launcher (default SHARED_LAUNCHER, as
`run_training`'s) says how the nodes start:
- "slurm": `_nodes/jobs.sbatch` (one task per node; `srun` runs the command with SLURM_NODEID as the
  rank) is submitted with `sbatch --wait` and the first node's log followed;
- "localhost": every node's process on this machine (node k logs to `_nodes/logs/launch.node<k>.log`),
  the CPU rehearsal of a multi-node launch;
- "local": the same notebook runs on every node (SHARED_NODE_RANK or SLURM_NODEID gives the rank); this
  node draws jobs here, then waits until every job is finished (their markers).
A job that still fails after its retries leaves `job_failed.json`: no other node of the launch retries it
(the "slurm" and "localhost" launchers clear the markers before the nodes start; with "local", a marker
written more than FAILED_STALE_S (5 minutes) before a node started is an earlier launch's, retried).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from .job_pool import (DONE_MARKER, FAILED_MARKER, WAIT, Job, JobResult, _prepare, _Progress, _run_pool, finished,
                       node_name)
from .launch import (REPO_ROOT, _stream, child_environment, default_node_rank, submit_slurm)
from .runner import _absolute

CLAIM_FILE = "job_claim.json"
LEASE_S = 180.0          # a claim not refreshed for this long is stale (its node is gone)
FAILED_STALE_S = 300.0   # "local" launcher: a failure marker this much older than the node's start is an earlier launch's
NODES_DIR = "_nodes"


class Claims:
    """The next unfinished, unclaimed job of a list several nodes draw from (module docstring: claims).

    take() walks the jobs in order and returns the first it claims, WAIT while the only unfinished jobs are
    claimed elsewhere, None when every job is finished or has failed in this launch (a failure marker written
    after `failed_since`). Not thread-safe on its own: the pool calls it under its lock."""

    def __init__(self, jobs: Sequence[Job], failed_since: float, lease_s: float = LEASE_S):
        self.jobs, self.failed_since, self.lease_s = list(jobs), failed_since, lease_s
        self.heartbeat_s = lease_s / 6
        self.host = socket.gethostname()

    def _failed_now(self, job: Job) -> bool:
        marker = job.run_dir / FAILED_MARKER
        return marker.exists() and marker.stat().st_mtime > self.failed_since

    def _holder(self, claim: Path) -> tuple[bool, str | None]:
        """(whether `claim` belongs to a node still running its job, its token): live when refreshed within
        lease_s and, when written on this host, its process alive; a claim being written counts as live."""
        try:
            age = time.time() - claim.stat().st_mtime
        except OSError:
            return False, None             # released meanwhile
        try:
            holder = json.loads(claim.read_text())
        except (OSError, ValueError):
            return age <= self.lease_s, None
        token = holder.get("token") if isinstance(holder, dict) else None
        if age > self.lease_s:
            return False, token
        if holder.get("host") == self.host:
            try:
                os.kill(int(holder["pid"]), 0)
            except ProcessLookupError:
                return False, token
            except (PermissionError, KeyError, TypeError, ValueError):
                pass
        return True, token

    def _claim(self, job: Job) -> bool:
        claim = job.run_dir / CLAIM_FILE
        job.run_dir.mkdir(parents=True, exist_ok=True)
        if claim.exists():
            live, token = self._holder(claim)
            if live:
                return False
            stale = claim.with_name(f"{CLAIM_FILE}.stale.{os.getpid()}.{time.time_ns()}")
            try:
                os.rename(claim, stale)     # one node wins the stale claim; the others find it gone
            except FileNotFoundError:
                return False
            moved = self._holder(stale)[1]
            if moved != token:              # another node had taken it over already: put its claim back
                try:
                    os.link(stale, claim)
                except FileExistsError:
                    pass
                stale.unlink(missing_ok=True)
                return False
            stale.unlink(missing_ok=True)
        try:
            fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            json.dump({"node": node_name(), "host": self.host, "pid": os.getpid(), "time": time.time(),
                       "token": uuid.uuid4().hex}, f)
        if finished(job):                  # finished between the check and the claim
            self.release(job)
            return False
        return True

    def take(self) -> Job | str | None:
        waiting = False
        for job in self.jobs:
            if finished(job) or self._failed_now(job):
                continue
            if self._claim(job):
                (job.run_dir / FAILED_MARKER).unlink(missing_ok=True)     # an earlier launch's
                _prepare(job, logs=True)
                return job
            waiting = True
        return WAIT if waiting else None

    def refresh(self, job: Job) -> None:
        try:
            os.utime(job.run_dir / CLAIM_FILE)
        except FileNotFoundError:
            pass

    def release(self, job: Job) -> None:
        (job.run_dir / CLAIM_FILE).unlink(missing_ok=True)


def _run_node(jobs: Sequence[Job], *, slots: int, max_restarts: int, env: Mapping[str, str] | None,
              timeout: float | None, progress_s: float, echo: Callable[[str], None],
              lease_s: float = LEASE_S) -> dict[str, JobResult]:
    """This node's part of a launch on several nodes: a pool of `slots` processes claiming the jobs of the
    shared list one by one (Claims) until none is left; returns the results of the jobs this node ran."""
    started = time.time()
    progress = _Progress(len(jobs), where=f"node {node_name()}: ")
    progress.skipped = sum(finished(job) for job in jobs)
    claims = Claims(jobs, failed_since=started - FAILED_STALE_S, lease_s=lease_s)
    ran = _run_pool(claims, len(jobs), slots, max_restarts, env, timeout, None, progress, progress_s, started, echo)
    echo(progress.line(started))
    return ran


def nodes_dir(jobs: Sequence[Job]) -> Path:
    """`<the folder holding every job's run_dir>/_nodes`: the job list, the sbatch and the nodes' logs."""
    return Path(os.path.commonpath([str(job.run_dir.resolve().parent) for job in jobs])) / NODES_DIR


def write_job_list(jobs: Sequence[Job], *, slots: int, nnodes: int, max_restarts: int,
                   env: Mapping[str, str] | None = None, timeout: float | None = None) -> Path:
    """`nodes_dir(jobs)/jobs.json`: every job and how the nodes run them (read by `node_main`)."""
    folder = nodes_dir(jobs)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "jobs.json"
    path.write_text(json.dumps({
        "slots": slots, "nnodes": nnodes, "max_restarts": max_restarts, "env": dict(env or {}), "timeout": timeout,
        "jobs": [{"name": j.name, "entry_point": _absolute(j.entry_point), "config": j.config,
                  "run_dir": str(j.run_dir.resolve())} for j in jobs]}, indent=1))
    return path


def node_command(job_list: Path, node_rank: int | str) -> list[str]:
    """argv that runs one node's pool over the jobs in `job_list`."""
    return [sys.executable, "-m", "shared.train.job_nodes", "--jobs", str(job_list), "--node-rank", str(node_rank)]


def write_jobs_sbatch(job_list: Path, *, nnodes: int, slots: int, sbatch_options: Sequence[str] = ()) -> Path:
    """`jobs.sbatch` beside `job_list`: one task per node, each a pool claiming jobs (SLURM_NODEID as the rank)
    with `slots` GPUs, logging to `logs/launch.<host>.log`."""
    folder = job_list.parent
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    q = shlex.quote
    command = " ".join(map(q, node_command(job_list, "RANK"))).replace("RANK", '"$SLURM_NODEID"')
    lines = ["#!/bin/bash", f"#SBATCH --job-name={folder.parent.name}-jobs", f"#SBATCH --nodes={nnodes}",
             "#SBATCH --ntasks-per-node=1", f"#SBATCH --gpus-per-node={slots}",
             f"#SBATCH --output={folder / 'logs'}/slurm-%j.out", *[f"#SBATCH {opt}" for opt in sbatch_options],
             "set -euo pipefail", f"cd {q(str(REPO_ROOT))}",
             f"export PYTHONPATH={q(str(REPO_ROOT))}${{PYTHONPATH:+:$PYTHONPATH}}",
             f"srun bash -c {q(command + ' > ' + str(folder / 'logs') + '/launch.$(hostname).log 2>&1')}"]
    path = folder / "jobs.sbatch"
    path.write_text("\n".join(lines) + "\n")
    return path


def _node_result(job: Job) -> JobResult:
    """A job's outcome as its markers record it (after the nodes have stopped)."""
    if finished(job):
        done = json.loads((job.run_dir / DONE_MARKER).read_text())
        return JobResult(job.name, job.run_dir, "done", done.get("attempts", 0), done.get("seconds", 0.0))
    failed = job.run_dir / FAILED_MARKER
    error = (json.loads(failed.read_text()).get("error") if failed.exists() else
             f"its node stopped before it finished; the nodes' logs are in {nodes_dir([job]).parent / NODES_DIR}")
    return JobResult(job.name, job.run_dir, "failed", error=error)


def run_on_nodes(jobs: Sequence[Job], slots: int, nnodes: int, launcher: str, max_restarts: int,
                  env: Mapping[str, str] | None, timeout: float | None, progress_s: float,
                  echo: Callable[[str], None]) -> list[JobResult]:
    for job in jobs:
        finished(job)           # ValueError now, not in a node, for a run_dir finished with another config
    job_list = write_job_list(jobs, slots=slots, nnodes=nnodes, max_restarts=max_restarts, env=env, timeout=timeout)
    started = time.time()
    if launcher in ("slurm", "localhost"):      # every node of this launch starts now: earlier failures are retried
        for job in jobs:
            (job.run_dir / FAILED_MARKER).unlink(missing_ok=True)
    if launcher == "slurm":
        code = submit_slurm(write_jobs_sbatch(job_list, nnodes=nnodes, slots=slots))
        if code != 0:
            echo(f"the SLURM job of {job_list} exited with {code}; logs in {job_list.parent / 'logs'}")
    elif launcher == "localhost":
        threads = [threading.Thread(target=_stream, daemon=True, args=(
            node_command(job_list, k), child_environment({**(env or {}), "SHARED_NODE_NAME": f"node{k}",
                                                          "SHARED_NODE_RANK": str(k)}),
            job_list.parent / "logs" / f"launch.node{k}.log", k == 0, None)) for k in range(nnodes)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        rank = default_node_rank(nnodes)
        if rank is None:
            raise ValueError(f"jobs on {nnodes} nodes with launcher 'local': run the notebook on every node with "
                             "SHARED_NODE_RANK=0 .. nnodes-1 (or under srun), or use launcher 'slurm'")
        # returns once every job is finished or has failed, here or on another node (they are reported below)
        _run_node(jobs, slots=slots, max_restarts=max_restarts, env=env, timeout=timeout, progress_s=progress_s,
                  echo=echo)
    results = [_node_result(job) for job in jobs]
    echo(f"jobs on {nnodes} nodes: {sum(r.status == 'done' for r in results)}/{len(jobs)} done "
         f"({time.time() - started:.0f} s)")
    failed = [r for r in results if r.status == "failed"]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(jobs)} jobs failed:\n" + "\n".join(
            f"--- {r.name} ({r.run_dir}) ---\n{r.error}" for r in failed))
    return results


def node_main(argv: Sequence[str] | None = None) -> int:
    """`python -m shared.train.job_nodes --jobs FILE --node-rank K`: node K's pool of `slots` processes, claiming
    FILE's unfinished jobs until none is left; exit 1 if a job it ran failed (its job_failed.json says why)."""
    parser = argparse.ArgumentParser(description=node_main.__doc__)
    parser.add_argument("--jobs", required=True, help="the job list write_job_list wrote")
    parser.add_argument("--node-rank", type=int, required=True)
    args = parser.parse_args(argv)
    spec = json.loads(Path(args.jobs).read_text())
    jobs = [Job(j["name"], j["entry_point"], j["config"], Path(j["run_dir"])) for j in spec["jobs"]]
    if not 0 <= args.node_rank < spec["nnodes"]:
        parser.error(f"--node-rank must be in [0, {spec['nnodes']}), got {args.node_rank}")
    print(f"node {node_name()} (rank {args.node_rank} of {spec['nnodes']}): drawing from {len(jobs)} jobs, "
          f"{spec['slots']} at a time", flush=True)
    ran = _run_node(jobs, slots=spec["slots"], max_restarts=spec["max_restarts"], env=spec["env"],
                    timeout=spec["timeout"], progress_s=10.0, echo=lambda line: print(line, flush=True))
    failed = [r for r in ran.values() if r.status == "failed"]
    for r in failed:
        print(f"--- {r.name} failed ({r.attempts} attempts, {r.run_dir}) ---\n{r.error}", flush=True)
    return 1 if failed else 0


__all__ = ["CLAIM_FILE", "Claims", "FAILED_STALE_S", "LEASE_S", "node_command", "node_main", "nodes_dir",
           "run_on_nodes", "write_job_list", "write_jobs_sbatch"]


if __name__ == "__main__":
    sys.exit(node_main())
