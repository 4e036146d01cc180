"""Many independent single-process training runs as jobs, `slots` at a time, one GPU each.

    from shared.train.jobs import Job, run_jobs
    jobs = [Job(f"resnet-{r}", "papers.example_difficulty.runs:train_run_job", {"run": r, ...},
                run.out_dir / "jobs" / f"resnet-{r}") for r in range(5)]
    results = run_jobs(jobs, slots=nproc_per_node, nnodes=nnodes)        # [JobResult], in job order

What the vision papers use instead of `run_training` (shared/train/runner.py): their runs are small and
independent, so they are not spread over ranks of one torchrun job but run side by side, one process per
GPU. An entry point is the same "package.module:function" (or "file.py:function") taking `(config: dict,
run_dir: str)` as a `run_training` one, and it runs the same way: `python -m shared.train.worker` in a
subprocess (world size 1, no process group), its config read from `run_dir/launch_config.json`.

Slots: `slots` jobs at once on each node (a notebook passes its nproc_per_node: one job per GPU). Slot k
is pinned to one GPU by CUDA_VISIBLE_DEVICES (`slot_devices`: round-robin over the node's visible GPUs,
so more slots than GPUs share them); without GPUs each slot is one CPU process. Every job gets
OMP_NUM_THREADS (on CPU 1; on GPU the node's cores over the slots, unless already set).

Several nodes (`nnodes` > 1): every node runs a pool of `slots` processes claiming the next unfinished job
of the one list, started by the launcher (slurm, localhost or local): `shared.train.job_nodes`.

Per job, in `job.run_dir`: `launch_config.json` (its config), `logs/job.log` (stdout and stderr of
every attempt, appended, each after a "=== attempt k ===" line), and after success `job_done.json`
(the marker: config hash, attempts, seconds). A rerun skips jobs whose marker holds the same config
hash (a different config in a finished run_dir is refused), and restarts unfinished ones; an entry
point that trains with TrainConfig(run_dir=run_dir, resume="latest") continues from its latest
checkpoint, after `resume_or_reset(run_dir, config, clear=[...])` has removed another config's. A failing
attempt is retried up to `max_restarts` times (default SHARED_MAX_RESTARTS, else 0); the job's environment says which attempt it is (SHARED_JOB_RESTART_COUNT, from 0) and how
many restarts it has (SHARED_JOB_MAX_RESTARTS), which `shared.train.trainer.rehearsal_crash` reads
for the CPU rehearsal's preemption. Jobs that still fail are reported together, each with its log's
tail, in one RuntimeError raised after every other job has finished. While jobs run, a progress
line (done / running / failed / waiting) is printed whenever it changes (at most every `progress_s`
seconds) and at the end.

`in_process=True` runs the same jobs one after another in this process (the world-size-1 path of
`run_training`: no subprocess, the entry point's output straight into the notebook; used by default
when there is one slot, e.g. the CPU smoke runs). It writes the same launch_config.json and marker,
retries the same way, and by default does not skip finished jobs (`skip_finished`), so a smoke run
into an old out_dir recomputes everything.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from .job_nodes import run_on_nodes
from .job_pool import (CONFIG_FILE, DONE_MARKER, FAILED_MARKER, JOB_LOG, MAX_RESTARTS_ENV, RESTART_COUNT_ENV,
                       STAMP_FILE, WAIT, Job, JobResult, JobSource, _Progress, _Queue, _prepare, _run_in_process,
                       _run_pool, config_hash, default_max_restarts, finished, job_environment, log_tail, node_name,
                       pool_description, resume_or_reset, slot_devices, visible_gpus)
from .launch import default_launcher


def run_jobs(jobs: Sequence[Job], *, slots: int = 1, nnodes: int = 1, launcher: str | None = None,
             max_restarts: int | None = None, in_process: bool | None = None, skip_finished: bool | None = None,
             env: Mapping[str, str] | None = None, timeout: float | None = None, progress_s: float = 10.0,
             gpus: Sequence[str] | None = None, echo: Callable[[str], None] = print) -> list[JobResult]:
    """Run every job, `slots` at a time on each of `nnodes` nodes, and return their results in job order;
    raise RuntimeError after all have stopped if any failed (each failed job's name, attempts and log tail).

    launcher: how several nodes start (module docstring; default SHARED_LAUNCHER, else "local").
    max_restarts: retries of a failed job (default SHARED_MAX_RESTARTS, else 0). in_process: run them
    here one after another (default: when slots == 1 on one node). skip_finished: skip jobs whose run_dir
    holds the finished-marker of the same config (default: unless in_process). env: added to every job's
    environment. timeout: seconds per attempt (None: no limit). gpus: this node's GPUs (default
    `visible_gpus()`). echo: where progress lines go."""
    names = [job.name for job in jobs]
    if len(set(names)) != len(names):
        raise ValueError("job names must be distinct")
    dirs = [job.run_dir.resolve() for job in jobs]
    if len(set(dirs)) != len(dirs):
        raise ValueError("every job needs its own run_dir")
    if slots < 1 or nnodes < 1:
        raise ValueError(f"slots and nnodes must be >= 1, got {slots} and {nnodes}")
    max_restarts = default_max_restarts() if max_restarts is None else max_restarts
    if max_restarts < 0:
        raise ValueError(f"max_restarts must be >= 0, got {max_restarts}")
    if nnodes > 1:
        if in_process or skip_finished is False:
            raise ValueError("jobs on several nodes run in their own processes and skip finished jobs")
        return run_on_nodes(jobs, slots, nnodes, launcher or default_launcher(), max_restarts, env, timeout,
                             progress_s, echo)
    in_process = slots == 1 if in_process is None else in_process
    skip_finished = not in_process if skip_finished is None else skip_finished
    started = time.time()
    progress = _Progress(len(jobs))
    skipped = {job.name for job in jobs if skip_finished and finished(job)}
    progress.skipped = len(skipped)
    todo = [job for job in jobs if job.name not in skipped]
    for job in todo:
        (job.run_dir / DONE_MARKER).unlink(missing_ok=True)
        (job.run_dir / FAILED_MARKER).unlink(missing_ok=True)
        _prepare(job, logs=not in_process)
    if in_process:
        ran = {r.name: r for r in _run_in_process(todo, max_restarts, progress, echo)}
    else:
        ran = _run_pool(_Queue(todo), len(todo), slots, max_restarts, env, timeout, gpus, progress, progress_s,
                        started, echo)
    echo(progress.line(started))
    results = [ran.get(job.name) or JobResult(job.name, job.run_dir, "skipped") for job in jobs]
    failed = [r for r in results if r.status == "failed"]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(jobs)} jobs failed:\n" + "\n".join(
            f"--- {r.name} ({r.attempts} attempts, {r.run_dir}) ---\n{r.error}" for r in failed))
    return results


__all__ = ["CONFIG_FILE", "DONE_MARKER", "FAILED_MARKER", "JOB_LOG", "Job", "JobResult", "JobSource",
           "MAX_RESTARTS_ENV", "RESTART_COUNT_ENV", "STAMP_FILE", "WAIT", "config_hash", "finished", "job_environment",
           "log_tail", "node_name", "pool_description", "resume_or_reset", "run_jobs", "slot_devices", "visible_gpus"]
