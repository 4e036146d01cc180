"""shared.train.jobs: many single-process runs as jobs, `slots` at a time, one GPU each.

The job entry points are this file's own functions (a job loads this file by its path, with tests/ on its
PYTHONPATH for _train_toy)."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import torch

from _train_toy import ToyNet, classify_loss, make_data
from shared.train import ResumableBatches, Trainer, TrainConfig
from shared.train.job_nodes import CLAIM_FILE, LEASE_S, Claims, node_main, write_job_list, write_jobs_sbatch
from shared.train.jobs import (DONE_MARKER, FAILED_MARKER, JOB_LOG, MAX_RESTARTS_ENV, RESTART_COUNT_ENV, WAIT, Job,
                               config_hash, job_environment, run_jobs, slot_devices, visible_gpus)
from shared.train.launch import REPO_ROOT
from shared.train.rehearsal_preemption import KIND_KEYS_ENV, KINDS_DIR_ENV
from shared.train.trainer import REHEARSAL_CRASH_MARKER

HERE = Path(__file__).resolve()
ENV = {"PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(HERE.parent)])}


def entry(name: str) -> str:
    return f"{HERE}:{name}"


# ---- job entry points ------------------------------------------------------------------------------

def sleepy(config: dict, run_dir: str) -> None:
    """Sleep config["sleep"] seconds; write when it ran (start, end) to run_dir/span.json."""
    start = time.time()
    time.sleep(config["sleep"])
    Path(run_dir, "span.json").write_text(json.dumps([start, time.time()]))
    with open(Path(run_dir) / "calls", "a") as f:
        f.write("x\n")


def gather(config: dict, run_dir: str) -> None:
    """Wait (up to 120 s) until 2 jobs are running (files in config["dir"]), then hold on a moment; write the
    most jobs seen running at once to run_dir/seen."""
    here = Path(config["dir"]) / Path(run_dir).name
    here.touch()
    deadline, seen = time.time() + 120, 0
    while time.time() < deadline:
        seen = max(seen, len(list(here.parent.iterdir())))
        if seen >= 2:
            break
        time.sleep(0.05)
    time.sleep(0.5)
    seen = max(seen, len(list(here.parent.iterdir())))
    here.unlink()
    Path(run_dir, "seen").write_text(str(seen))
    sleepy({"sleep": 0.0}, run_dir)


def flaky(config: dict, run_dir: str) -> None:
    """Fail (printing a line the error must show) on the first config["fail"] attempts, then succeed."""
    attempt = int(os.environ.get(RESTART_COUNT_ENV, "0"))
    with open(Path(run_dir) / "attempts", "a") as f:
        f.write(f"{attempt}\n")
    if attempt < config["fail"]:
        raise RuntimeError(f"flaky failure number {attempt}")


class StartSteps:
    """Callback: appends the step each fit starts from to run_dir/starts."""

    def __init__(self, run_dir: str):
        self.path = Path(run_dir) / "starts"

    def on_fit_start(self, trainer) -> None:
        with open(self.path, "a") as f:
            f.write(f"{trainer.step}\n")


def toy_training(config: dict, run_dir: str) -> None:
    """ToyNet for config["steps"] steps, a checkpoint every 2, resuming from the latest; writes the final loss."""
    torch.manual_seed(0)
    data = ResumableBatches(make_data(), 16, seed=3)
    cfg = TrainConfig(max_steps=config["steps"], lr=1e-2, checkpoint_every=2, log_every=1, run_dir=run_dir,
                      progress_bar=False)
    trainer = Trainer(ToyNet(), classify_loss, data, cfg, callbacks=[StartSteps(run_dir)])
    history = trainer.fit()
    Path(run_dir, "final.json").write_text(json.dumps({"loss": history.final("loss")}))


# ---- devices -----------------------------------------------------------------------------------------

def test_each_slot_gets_one_gpu():
    assert slot_devices(3, ["0", "1", "2", "3"]) == ["0", "1", "2"]
    assert slot_devices(4, ["2", "5"]) == ["2", "5", "2", "5"]      # more slots than GPUs: they share
    assert slot_devices(2, []) == [None, None]                      # CPU
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "3, 5,GPU-ab"}) == ["3", "5", "GPU-ab"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "-1"}) == []


def test_job_environment_pins_one_gpu_or_one_cpu_thread():
    gpu = job_environment("5", slots=4, attempt=1, max_restarts=2, env={}, cpu_count=16)
    assert gpu["CUDA_VISIBLE_DEVICES"] == "5" and gpu[RESTART_COUNT_ENV] == "1" and gpu[MAX_RESTARTS_ENV] == "2"
    if "OMP_NUM_THREADS" not in os.environ:
        assert gpu["OMP_NUM_THREADS"] == "4"
    cpu = job_environment(None, slots=2, attempt=0, max_restarts=0, env={"OMP_NUM_THREADS": "8"})
    assert cpu["OMP_NUM_THREADS"] == "1" and cpu[RESTART_COUNT_ENV] == "0"
    assert str(REPO_ROOT) in cpu["PYTHONPATH"].split(os.pathsep)


# ---- the pool ----------------------------------------------------------------------------------------

def test_jobs_run_up_to_slots_at_once_and_a_rerun_skips_finished_ones(tmp_path):
    running = tmp_path / "running"
    running.mkdir()
    jobs = [Job(f"j{i}", entry("gather"), {"dir": str(running)}, tmp_path / f"j{i}") for i in range(4)]
    results = run_jobs(jobs, slots=2, env=ENV, gpus=[], max_restarts=0)
    assert [r.status for r in results] == ["done"] * 4
    assert [int((j.run_dir / "seen").read_text()) for j in jobs] == [2] * 4      # two at a time, never three
    for job in jobs:
        assert (job.run_dir / DONE_MARKER).exists() and (job.run_dir / JOB_LOG).exists()
        assert json.loads((job.run_dir / "launch_config.json").read_text()) == {"dir": str(running)}
    rerun = run_jobs(jobs, slots=2, env=ENV, gpus=[])
    assert [r.status for r in rerun] == ["skipped"] * 4
    assert all((j.run_dir / "calls").read_text() == "x\n" for j in jobs)
    changed = [Job("j0", entry("gather"), {"dir": "elsewhere"}, tmp_path / "j0")]
    with pytest.raises(ValueError, match="another config"):
        run_jobs(changed, slots=2, env=ENV, gpus=[])


def test_a_failing_job_is_retried_then_reported_with_its_log_tail_after_the_others(tmp_path):
    jobs = [Job("fails_once", entry("flaky"), {"fail": 1}, tmp_path / "a"),
            Job("always_fails", entry("flaky"), {"fail": 99}, tmp_path / "b"),
            Job("fine", entry("sleepy"), {"sleep": 0.1}, tmp_path / "c")]
    with pytest.raises(RuntimeError) as err:
        run_jobs(jobs, slots=2, env=ENV, gpus=[], max_restarts=1)
    message = str(err.value)
    assert "1 of 3 jobs failed" in message and "always_fails" in message and "fails_once" not in message
    assert "flaky failure number 1" in message             # the last attempt's log tail
    assert (tmp_path / "a" / "attempts").read_text().split() == ["0", "1"]
    assert (tmp_path / "b" / "attempts").read_text().split() == ["0", "1"]
    assert (tmp_path / "a" / DONE_MARKER).exists() and (tmp_path / "c" / DONE_MARKER).exists()
    assert not (tmp_path / "b" / DONE_MARKER).exists()
    assert "=== attempt 1" in (tmp_path / "b" / JOB_LOG).read_text()


def test_a_preempted_job_restarts_and_resumes_from_its_checkpoint(tmp_path):
    """SHARED_REHEARSAL_CRASH=1: the job exits after its first periodic checkpoint (rehearsal_crash reads the
    pool's restart count), the pool restarts it and the trainer resumes at that step, ending where an
    uninterrupted run ends."""
    crashed = Job("crashed", entry("toy_training"), {"steps": 6}, tmp_path / "crashed")
    plain = Job("plain", entry("toy_training"), {"steps": 6}, tmp_path / "plain")
    run_jobs([crashed], slots=2, env={**ENV, "SHARED_REHEARSAL_CRASH": "1"}, gpus=[], max_restarts=1)
    run_jobs([plain], slots=2, env=ENV, gpus=[], max_restarts=1)
    assert (crashed.run_dir / REHEARSAL_CRASH_MARKER).read_text().split() == ["2"]
    assert (crashed.run_dir / "starts").read_text().split() == ["0", "2"]
    assert (plain.run_dir / "starts").read_text().split() == ["0"]
    assert json.loads((crashed.run_dir / DONE_MARKER).read_text())["attempts"] == 2
    assert json.loads((crashed.run_dir / "final.json").read_text()) == json.loads((plain.run_dir / "final.json").read_text())


def test_with_kind_keys_one_job_of_each_kind_is_preempted(tmp_path):
    """SHARED_REHEARSAL_KIND_KEYS: of jobs whose configs agree at those keys, only the first to reach its
    checkpoint is preempted (the kind's file in SHARED_REHEARSAL_KINDS_DIR names it); another kind gets its own."""
    jobs = [Job(f"j{i}", entry("toy_training"), {"steps": 4, "kind": kind, "i": i}, tmp_path / f"j{i}")
            for i, kind in enumerate(["a", "a", "a", "b"])]
    env = {**ENV, "SHARED_REHEARSAL_CRASH": "1", KIND_KEYS_ENV: json.dumps(["kind"]),
           KINDS_DIR_ENV: str(tmp_path / "kinds")}
    run_jobs(jobs, slots=1, nnodes=1, env=env, gpus=[], max_restarts=1, in_process=False)
    crashed = [j.name for j in jobs if (j.run_dir / REHEARSAL_CRASH_MARKER).exists()]
    assert crashed == ["j0", "j3"]                                # one slot: j0 reaches its checkpoint first
    assert sorted(p.read_text() for p in (tmp_path / "kinds").iterdir()) == sorted(
        str(j.run_dir.resolve()) for j in (jobs[0], jobs[3]))
    assert [(j.run_dir / "starts").read_text().split() for j in jobs] == [["0", "2"], ["0"], ["0"], ["0", "2"]]


def test_in_process_runs_the_same_jobs_here(tmp_path):
    jobs = [Job(f"j{i}", entry("sleepy"), {"sleep": 0.0}, tmp_path / f"j{i}") for i in range(2)]
    results = run_jobs(jobs, slots=1, max_restarts=0)           # one slot: in this process by default
    assert [r.status for r in results] == ["done", "done"]
    assert all((j.run_dir / DONE_MARKER).exists() for j in jobs)
    run_jobs(jobs, slots=1)                                     # no skipping in process: runs them again
    assert all((j.run_dir / "calls").read_text() == "x\nx\n" for j in jobs)
    with pytest.raises(RuntimeError, match="(?s)1 of 1 jobs failed.*flaky failure number 0"):
        run_jobs([Job("f", entry("flaky"), {"fail": 9}, tmp_path / "f")], slots=1, max_restarts=0)


# ---- several nodes ---------------------------------------------------------------------------------

def test_jobs_on_several_nodes_run_in_their_own_processes():
    jobs = [Job(f"j{i}", entry("sleepy"), {}, Path(f"/tmp/j{i}")) for i in range(5)]
    with pytest.raises(ValueError, match="in their own processes"):
        run_jobs(jobs, nnodes=2, in_process=True)


def _node_of(job: Job) -> str:
    """The node named in the job log's first attempt line."""
    return re.search(r"=== attempt \d+ \(node (\S+),", (job.run_dir / JOB_LOG).read_text()).group(1)


def test_jobs_on_two_localhost_nodes_are_drawn_by_both_and_a_failure_on_either_is_reported(tmp_path):
    """launcher "localhost": one pool process per node on this machine, each claiming the next unfinished job
    (node k named node<k> in its jobs' logs); every job runs once; the caller gets every job's result."""
    jobs = [Job(f"j{i}", entry("sleepy"), {"sleep": 1.0}, tmp_path / "jobs" / f"j{i}") for i in range(6)]
    results = run_jobs(jobs, slots=1, nnodes=2, launcher="localhost", env=ENV, max_restarts=0, progress_s=0.2)
    assert [r.status for r in results] == ["done"] * 6
    assert all((j.run_dir / "calls").read_text() == "x\n" for j in jobs)              # each job ran once
    assert {_node_of(j) for j in jobs} == {"node0", "node1"}
    assert not any((j.run_dir / CLAIM_FILE).exists() for j in jobs)                    # claims released
    assert {p.name for p in (tmp_path / "jobs" / "_nodes" / "logs").iterdir()} == {"launch.node0.log",
                                                                                  "launch.node1.log"}
    rerun = run_jobs(jobs, slots=1, nnodes=2, launcher="localhost", env=ENV, progress_s=0.2)
    assert all((j.run_dir / "calls").read_text() == "x\n" for j in jobs)              # finished jobs skipped
    assert [r.status for r in rerun] == ["done"] * 6
    bad = [Job("fine", entry("sleepy"), {"sleep": 0.0}, tmp_path / "bad" / "fine"),
           Job("broken", entry("flaky"), {"fail": 9}, tmp_path / "bad" / "broken")]
    with pytest.raises(RuntimeError, match="(?s)1 of 2 jobs failed.*broken.*flaky failure number 1"):
        run_jobs(bad, slots=1, nnodes=2, launcher="localhost", env=ENV, max_restarts=1, progress_s=0.2)
    assert json.loads((tmp_path / "bad" / "broken" / FAILED_MARKER).read_text())["node"] in ("node0", "node1")
    assert len(re.findall("=== attempt", (tmp_path / "bad" / "broken" / JOB_LOG).read_text())) == 2   # not retried by the other node


def _claim(job: Job, host: str, pid: int, age_s: float = 0.0) -> None:
    job.run_dir.mkdir(parents=True, exist_ok=True)
    path = job.run_dir / CLAIM_FILE
    path.write_text(json.dumps({"node": "elsewhere", "host": host, "pid": pid, "time": time.time()}))
    os.utime(path, (time.time() - age_s, time.time() - age_s))


def test_a_live_claim_is_left_to_its_node_and_a_stale_one_taken_over(tmp_path):
    """Claims: a job claimed by a live node elsewhere is skipped (take() says WAIT when nothing else is
    left); a claim past its lease, or of a process gone on this host, is taken over."""
    jobs = [Job(f"j{i}", entry("sleepy"), {}, tmp_path / f"j{i}") for i in range(4)]
    dead = subprocess.Popen(["true"])
    dead.wait()
    _claim(jobs[0], "another-host", 1)                          # live: fresh, on a host we cannot check
    _claim(jobs[1], "another-host", 1, age_s=LEASE_S + 5)      # stale: past its lease
    _claim(jobs[2], socket.gethostname(), dead.pid)             # stale: its process is gone
    _claim(jobs[3], socket.gethostname(), os.getpid())          # live: this process
    claims = Claims(jobs, failed_since=time.time() - 60)
    assert [claims.take().name, claims.take().name] == ["j1", "j2"]
    assert json.loads((jobs[1].run_dir / CLAIM_FILE).read_text())["pid"] == os.getpid()
    assert claims.take() == WAIT
    (jobs[0].run_dir / DONE_MARKER).write_text(json.dumps({"config_sha1": config_hash(jobs[0].config)}))
    claims.release(jobs[3])
    assert claims.take().name == "j3"
    claims.release(jobs[1]), claims.release(jobs[2]), claims.release(jobs[3])
    for job in jobs[1:]:
        (job.run_dir / FAILED_MARKER).write_text("{}")          # failed in this launch: not retried
    assert claims.take() is None


def test_with_launcher_local_a_node_draws_jobs_then_waits_for_the_others(tmp_path, monkeypatch):
    """The same notebook on every node: a node that starts late finds the jobs another node finished; one
    that finds a job claimed elsewhere waits until that job is finished."""
    jobs = [Job(f"j{i}", entry("sleepy"), {"sleep": 0.0}, tmp_path / f"j{i}") for i in range(3)]
    job_list = write_job_list(jobs, slots=1, nnodes=2, max_restarts=0, env=ENV)
    assert node_main(["--jobs", str(job_list), "--node-rank", "1"]) == 0               # node 1 alone: all 3
    assert all((j.run_dir / "calls").read_text() == "x\n" for j in jobs)
    monkeypatch.setenv("SHARED_NODE_RANK", "0")
    results = run_jobs(jobs, slots=1, nnodes=2, launcher="local", env=ENV, max_restarts=0, progress_s=0.2)
    assert [r.status for r in results] == ["done"] * 3
    assert all((j.run_dir / "calls").read_text() == "x\n" for j in jobs)              # not run again
    late = Job("late", entry("sleepy"), {"sleep": 0.0}, tmp_path / "late")
    _claim(late, "another-host", 1)
    finisher = threading.Timer(1.5, lambda: (late.run_dir / DONE_MARKER).write_text(
        json.dumps({"config_sha1": config_hash(late.config)})))
    finisher.start()
    t0 = time.time()
    assert [r.status for r in run_jobs([late], slots=1, nnodes=2, launcher="local", env=ENV, progress_s=0.2)] == ["done"]
    assert time.time() - t0 >= 1.4 and not (late.run_dir / "calls").exists()           # waited, did not run it
    monkeypatch.delenv("SHARED_NODE_RANK")
    with pytest.raises(ValueError, match="SHARED_NODE_RANK"):
        run_jobs(jobs, slots=1, nnodes=2, launcher="local")


def test_the_sbatch_runs_one_pool_per_node(tmp_path):
    jobs = [Job(f"j{i}", entry("sleepy"), {}, tmp_path / "jobs" / f"j{i}") for i in range(3)]
    job_list = write_job_list(jobs, slots=8, nnodes=4, max_restarts=2)
    text = write_jobs_sbatch(job_list, nnodes=4, slots=8, sbatch_options=["--partition=gpu"]).read_text()
    assert "#SBATCH --nodes=4" in text and "#SBATCH --gpus-per-node=8" in text and "#SBATCH --partition=gpu" in text
    assert "#SBATCH --ntasks-per-node=1" in text
    srun = [line for line in text.splitlines() if line.startswith("srun ")]
    assert len(srun) == 1 and '--node-rank "$SLURM_NODEID"' in srun[0] and str(job_list) in srun[0]
    assert json.loads(job_list.read_text())["max_restarts"] == 2
