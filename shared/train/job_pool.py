"""The parts of `shared.train.jobs` that run jobs on one node: the Job record, its markers and folder rules,
the pool of `slots` job processes (`_Pool`, fed by a `JobSource`: the node's own queue, or the claims of
several nodes in `shared.train.job_nodes`) and the in-process path. `shared.train.jobs.run_jobs` is the
entry point; its docstring describes the whole.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from shared.utils.io import write_json_atomic

from .launch import TAIL_CHARS, child_environment
from .runner import _absolute, load_entry_point

log = logging.getLogger(__name__)

CONFIG_FILE = "launch_config.json"
DONE_MARKER = "job_done.json"
FAILED_MARKER = "job_failed.json"
STAMP_FILE = "job_config_stamp.json"   # resume_or_reset: the config a folder's training belongs to
JOB_LOG = "logs/job.log"
# read by shared.train.trainer.rehearsal_crash (names repeated there)
RESTART_COUNT_ENV = "SHARED_JOB_RESTART_COUNT"
MAX_RESTARTS_ENV = "SHARED_JOB_MAX_RESTARTS"


@dataclass
class Job:
    """One training run: `entry_point(config, str(run_dir))`; `name` labels it in progress and errors."""

    name: str
    entry_point: str
    config: dict[str, Any]
    run_dir: Path

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)


@dataclass
class JobResult:
    """status: "done" (ran now), "skipped" (finished before) or "failed"; attempts made now; error: the
    last attempt's exception text or exit code with the log tail (failed jobs)."""

    name: str
    run_dir: Path
    status: str
    attempts: int = 0
    seconds: float = 0.0
    error: str | None = None


@dataclass
class _Progress:
    total: int
    where: str = ""
    done: int = 0
    skipped: int = 0
    failed: int = 0
    running: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def line(self, started: float) -> str:
        if self.where:          # one node of several: the others' jobs are not counted here
            return (f"{self.where}{self.done} jobs done here, {len(self.running)} running, {self.failed} failed, "
                    f"{self.skipped} of {self.total} finished before ({time.time() - started:.0f} s)")
        waiting = self.total - self.done - self.skipped - self.failed - len(self.running)
        skipped = f" ({self.skipped} finished before)" if self.skipped else ""
        return (f"{self.where}jobs: {self.done + self.skipped}/{self.total} done{skipped}, {len(self.running)} running, "
                f"{self.failed} failed, {waiting} waiting ({time.time() - started:.0f} s)")


# ---- slots and devices -------------------------------------------------------------------------------

def pool_description(slots: int = 1, nnodes: int = 1) -> str:
    """How run_jobs will run jobs with these slots and nodes, in words (for a notebook's output)."""
    if slots * nnodes == 1:
        return "jobs: here, one after another"
    where = f" on each of {nnodes} nodes" if nnodes > 1 else ""
    return f"jobs: {slots} at a time{where}, one process (one GPU) each"


def visible_gpus(env: Mapping[str, str] | None = None) -> list[str]:
    """This node's GPUs as CUDA_VISIBLE_DEVICES entries: the entries of `env`'s (default os.environ's)
    CUDA_VISIBLE_DEVICES when set (empty or "-1": none), else "0" .. str(torch.cuda.device_count() - 1)."""
    env = os.environ if env is None else env
    value = env.get("CUDA_VISIBLE_DEVICES")
    if value is not None:
        entries = [v.strip() for v in value.split(",") if v.strip()]
        return [] if entries[:1] == ["-1"] else entries
    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


def slot_devices(slots: int, gpus: Sequence[str]) -> list[str | None]:
    """CUDA_VISIBLE_DEVICES of each slot: gpus[k % len(gpus)] for slot k, or None for every slot (CPU)."""
    if slots < 1:
        raise ValueError(f"slots must be >= 1, got {slots}")
    return [gpus[k % len(gpus)] for k in range(slots)] if gpus else [None] * slots


def job_environment(device: str | None, slots: int, attempt: int, max_restarts: int,
                    env: Mapping[str, str] | None = None, cpu_count: int | None = None) -> dict[str, str]:
    """A job process's environment: launch.child_environment (PYTHONPATH, OMP_NUM_THREADS=1 unless set),
    then `env`; CUDA_VISIBLE_DEVICES=device on a GPU (OMP_NUM_THREADS: the cores over the slots unless set),
    OMP_NUM_THREADS=1 on CPU; the attempt (from 0) and the restart budget for rehearsal_crash."""
    given = {**os.environ, **(env or {})}
    child = child_environment(dict(env or {}))
    if device is None:
        child["OMP_NUM_THREADS"] = "1"
    else:
        child["CUDA_VISIBLE_DEVICES"] = device
        if "OMP_NUM_THREADS" not in given:
            child["OMP_NUM_THREADS"] = str(max(1, (cpu_count or os.cpu_count() or 1) // slots))
    child[RESTART_COUNT_ENV] = str(attempt)
    child[MAX_RESTARTS_ENV] = str(max_restarts)
    return child


def default_max_restarts() -> int:
    value = os.environ.get("SHARED_MAX_RESTARTS")
    return int(value) if value is not None else 0


# ---- one job -----------------------------------------------------------------------------------------

def config_hash(config: Mapping[str, Any]) -> str:
    return hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def finished(job: Job) -> bool:
    """Whether job.run_dir holds the marker of this job's config (ValueError: of another config)."""
    marker = job.run_dir / DONE_MARKER
    if not marker.exists():
        return False
    recorded = json.loads(marker.read_text()).get("config_sha1")
    if recorded != config_hash(job.config):
        raise ValueError(f"job {job.name}: {job.run_dir} holds a finished job of another config; remove the folder "
                         "or give this job another run_dir")
    return True


def resume_or_reset(folder: str | Path, config: Mapping[str, Any], clear: Sequence[str] | None = None) -> bool:
    """For a job entry point that trains in `folder` (its run_dir or a subfolder): True when `folder` holds
    this config's training already (its STAMP_FILE has the config's hash: resume from what is there); else
    remove `clear` (paths relative to `folder`; None: everything in it), stamp the folder with this config and
    return False. So a job whose config changed never resumes another config's checkpoints."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stamp, sha = folder / STAMP_FILE, config_hash(config)
    try:
        if json.loads(stamp.read_text()).get("config_sha1") == sha:
            return True
    except (OSError, ValueError, AttributeError):
        pass
    targets = [folder / c for c in clear] if clear is not None else [p for p in folder.iterdir() if p != stamp]
    for path in targets:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    write_json_atomic(stamp, {"config_sha1": sha})
    return False


def log_tail(path: Path, chars: int = TAIL_CHARS) -> str:
    if not path.exists():
        return ""
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - chars))
        return f.read().decode(errors="replace")


def _prepare(job: Job, logs: bool) -> None:
    (job.run_dir / "logs" if logs else job.run_dir).mkdir(parents=True, exist_ok=True)
    (job.run_dir / CONFIG_FILE).write_text(json.dumps(job.config, indent=1))


def _mark_failed(job: Job, result: JobResult) -> None:
    (job.run_dir / FAILED_MARKER).write_text(json.dumps(
        {"name": job.name, "config_sha1": config_hash(job.config), "node": node_name(), "attempts": result.attempts,
         "error": result.error}))


def node_name() -> str:
    """This node's name in logs: SHARED_NODE_NAME (nodes sharing a host), else the host name."""
    return os.environ.get("SHARED_NODE_NAME") or socket.gethostname()


def _mark_done(job: Job, attempts: int, seconds: float) -> None:
    (job.run_dir / DONE_MARKER).write_text(json.dumps(
        {"name": job.name, "config_sha1": config_hash(job.config), "attempts": attempts, "seconds": seconds}))


class _Queue:
    """The jobs of one node, in order (no claims)."""

    heartbeat_s = 30.0

    def __init__(self, jobs: Sequence[Job]):
        self.jobs = list(reversed(jobs))

    def take(self) -> Job | None:
        return self.jobs.pop() if self.jobs else None

    def refresh(self, job: Job) -> None:
        pass

    def release(self, job: Job) -> None:
        pass


WAIT = "wait"        # JobSource.take: nothing to take now, but another node's claim may still go stale


class JobSource(Protocol):
    """Where a pool's slots take their jobs: `_Queue` (one node) or `job_nodes.Claims` (several)."""

    heartbeat_s: float      # how often a running job's claim is refreshed

    def take(self) -> Job | str | None: ...         # a job, WAIT, or None when nothing is left

    def refresh(self, job: Job) -> None: ...

    def release(self, job: Job) -> None: ...


class _Pool:
    """Runs jobs in subprocesses, one worker thread per slot, each taking its jobs from `source`."""

    def __init__(self, source: JobSource, slots: int, max_restarts: int, env: Mapping[str, str] | None,
                 timeout: float | None, progress: _Progress, echo: Callable[[str], None], poll_s: float = 2.0):
        self.source = source
        self.slots, self.max_restarts, self.env, self.timeout = slots, max_restarts, env, timeout
        self.progress, self.echo, self.poll_s = progress, echo, poll_s
        self.results: dict[str, JobResult] = {}
        self.procs: dict[int, subprocess.Popen] = {}
        self.stopping = False

    def _next(self) -> Job | None:
        while True:
            with self.progress.lock:
                job = None if self.stopping else self.source.take()
            if job != WAIT:
                return job
            time.sleep(self.poll_s)

    def _wait(self, proc: subprocess.Popen, job: Job) -> int:
        """proc's exit code, refreshing the job's claim meanwhile; raises TimeoutExpired after self.timeout."""
        deadline = None if self.timeout is None else time.time() + self.timeout
        beat = self.source.heartbeat_s
        while True:
            wait = beat if deadline is None else min(beat, max(0.0, deadline - time.time()))
            try:
                return proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                if deadline is not None and time.time() >= deadline:
                    raise
                self.source.refresh(job)

    def _attempt(self, job: Job, slot: int, device: str | None, attempt: int) -> int:
        cmd = [sys.executable, "-m", "shared.train.worker", "--entry-point", _absolute(job.entry_point),
               "--config", str((job.run_dir / CONFIG_FILE).resolve()), "--run-dir", str(job.run_dir.resolve())]
        env = job_environment(device, self.slots, attempt, self.max_restarts, self.env)
        with open(job.run_dir / JOB_LOG, "a") as out:
            out.write(f"=== attempt {attempt} (node {node_name()}, slot {slot}, CUDA_VISIBLE_DEVICES={device}) ===\n")
            out.flush()
            proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
            with self.progress.lock:
                self.procs[slot] = proc
            try:
                return self._wait(proc, job)
            except subprocess.TimeoutExpired:
                _stop(proc)
                out.write(f"\n=== killed after {self.timeout} s ===\n")
                return -9
            finally:
                with self.progress.lock:
                    self.procs.pop(slot, None)

    def work(self, slot: int, device: str | None) -> None:
        while (job := self._next()) is not None:
            with self.progress.lock:
                self.progress.running.add(job.name)
            t0, code, attempt = time.time(), None, 0
            for attempt in range(self.max_restarts + 1):
                if self.stopping:
                    break
                code = self._attempt(job, slot, device, attempt)
                if code == 0:
                    break
                if attempt < self.max_restarts and not self.stopping:
                    self.echo(f"job {job.name} exited with {code} (attempt {attempt + 1} of {self.max_restarts + 1}); "
                              "restarting it")
            seconds = time.time() - t0
            with self.progress.lock:
                self.progress.running.discard(job.name)
                if code == 0:
                    _mark_done(job, attempt + 1, seconds)
                    self.progress.done += 1
                    self.results[job.name] = JobResult(job.name, job.run_dir, "done", attempt + 1, seconds)
                else:
                    self.progress.failed += 1
                    self.results[job.name] = JobResult(
                        job.name, job.run_dir, "failed", attempt + 1, seconds,
                        f"exit code {code}; log {job.run_dir / JOB_LOG}\n{log_tail(job.run_dir / JOB_LOG)}")
                    _mark_failed(job, self.results[job.name])
                self.source.release(job)

    def stop(self) -> None:
        with self.progress.lock:
            self.stopping = True
            procs = list(self.procs.values())
        for proc in procs:
            _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    """Terminate a job's process group, then kill what is left of it."""
    for sig, wait in ((15, 20), (9, 10)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _run_in_process(jobs: Sequence[Job], max_restarts: int, progress: _Progress,
                    echo: Callable[[str], None]) -> list[JobResult]:
    results = []
    for job in jobs:
        fn = load_entry_point(job.entry_point)
        progress.running.add(job.name)
        t0, error, attempt = time.time(), None, 0
        for attempt in range(max_restarts + 1):
            try:
                fn(job.config, str(job.run_dir))
                error = None
                break
            except Exception:
                error = traceback.format_exc()[-TAIL_CHARS:]
                if attempt < max_restarts:
                    echo(f"job {job.name} failed (attempt {attempt + 1} of {max_restarts + 1}); restarting it")
        progress.running.discard(job.name)
        seconds = time.time() - t0
        if error is None:
            _mark_done(job, attempt + 1, seconds)
            progress.done += 1
            results.append(JobResult(job.name, job.run_dir, "done", attempt + 1, seconds))
        else:
            progress.failed += 1
            results.append(JobResult(job.name, job.run_dir, "failed", attempt + 1, seconds, error))
    return results


# ---- the pool -------------------------------------------------------------------------------------------

def _run_pool(source: JobSource, n_jobs: int, slots: int, max_restarts: int,
              env: Mapping[str, str] | None, timeout: float | None, gpus: Sequence[str] | None, progress: _Progress,
              progress_s: float, started: float, echo: Callable[[str], None]) -> dict[str, JobResult]:
    gpus = visible_gpus() if gpus is None else list(gpus)
    if gpus and slots > len(gpus):
        log.warning("%d job slots on %d GPUs: some GPUs run several jobs at once", slots, len(gpus))
    pool = _Pool(source, slots, max_restarts, env, timeout, progress, echo)
    threads = [threading.Thread(target=pool.work, args=(k, device), daemon=True)
               for k, device in enumerate(slot_devices(min(slots, max(1, n_jobs)), gpus))]
    for t in threads:
        t.start()
    shown, last = None, 0.0
    try:
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(timeout=0.2)
            with progress.lock:
                line = progress.line(started)
                state = (progress.done, progress.failed, len(progress.running))
            if state != shown and time.time() - last >= progress_s:
                echo(line)
                shown, last = state, time.time()
    except BaseException:           # an interrupt of the notebook: stop every job, then re-raise
        pool.stop()
        for t in threads:
            t.join(timeout=60)
        raise
    return pool.results


__all__ = ["CONFIG_FILE", "DONE_MARKER", "FAILED_MARKER", "JOB_LOG", "Job", "JobResult", "JobSource",
           "MAX_RESTARTS_ENV", "RESTART_COUNT_ENV", "STAMP_FILE", "WAIT", "config_hash", "default_max_restarts",
           "finished", "job_environment", "log_tail", "node_name", "pool_description", "resume_or_reset",
           "slot_devices", "visible_gpus"]
