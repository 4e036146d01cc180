"""Two CPU processes on gloo under torchrun match one process at the same global batch:
DDP, FSDP2 (fully_shard) and its ZeRO-2 form (fsdp_grad_op) including a stop, sharded checkpoint and
resume across launches, and fp16 loss scaling that skips the same steps on every rank."""
from __future__ import annotations

import json
import socket
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from _train_toy import ToyNet
from shared.train import (
    build_torchrun_command,
    latest_checkpoint,
    launch,
    load_model_weights,
    run_rdzv_id,
    run_training,
    write_sbatch,
)
from shared.train.launch import child_environment, default_node_rank
from shared.train.distributed import process_group_timeout_s

ENTRY = f"{Path(__file__).with_name('_train_toy.py')}:entry"
GLOBAL_BATCH, STEPS = 16, 10


def _config(parallelism, world, optimizer="adamw", until_step=None, **train_overrides):
    train = dict(max_steps=STEPS, lr=1e-2, optimizer=optimizer, weight_decay=0.1, warmup_steps=2,
                 grad_accum=2, parallelism=parallelism, progress_bar=False, keep_last_n=1, **train_overrides)
    return {"train": train, "micro_batch_size": GLOBAL_BATCH // (2 * world), "dropout": 0.0,
            "until_step": until_step}


def _max_diff(a, b):
    assert [r["step"] for r in a.train] == [r["step"] for r in b.train] == list(range(1, STEPS + 1))
    return float(np.abs(np.array(a.losses) - np.array(b.losses)).max())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow   # two torchrun launches
def test_ddp_two_processes_match_one(tmp_path):
    one = run_training(ENTRY, _config("ddp", 1), run_dir=tmp_path / "one")
    # the multi-node command path (c10d rendezvous at host:port), here with one node
    two = run_training(ENTRY, _config("ddp", 2), run_dir=tmp_path / "two", nproc_per_node=2,
                       rdzv_endpoint=f"127.0.0.1:{_free_port()}", timeout=120)
    diff = _max_diff(one, two)
    print(f"DDP 2 procs vs 1: max |loss diff| = {diff:.3g}")
    assert diff < 1e-5
    assert two.train[-1]["samples"] == STEPS * GLOBAL_BATCH  # counted over both ranks
    assert (tmp_path / "two" / "checkpoints" / "step_00000010" / "rank_00001.pt").exists()


@pytest.mark.slow   # three torchrun launches
@pytest.mark.timeout(1200)
def test_fsdp2_two_processes_match_one_with_resume(tmp_path):
    one = run_training(ENTRY, _config("fsdp", 1, "lionw"), run_dir=tmp_path / "one")
    run_dir = tmp_path / "two"
    run_training(ENTRY, _config("fsdp", 2, "lionw", until_step=STEPS // 2), run_dir=run_dir,
                 nproc_per_node=2, timeout=120)
    assert (latest_checkpoint(run_dir) / "dcp").is_dir()  # sharded checkpoint
    two = run_training(ENTRY, _config("fsdp", 2, "lionw") | {"probe_sharding": True}, run_dir=run_dir,
                       nproc_per_node=2, timeout=120)
    diff = _max_diff(one, two)
    print(f"FSDP2 2 procs (stopped at {STEPS // 2}, resumed) vs 1: max |loss diff| = {diff:.3g}")
    assert diff < 1e-5
    # ZeRO-3: a block's parameters are resharded right after its forward
    assert json.loads((run_dir / "sharding_probe.json").read_text()) == {"unsharded_after_forward": False}
    # the sharded checkpoint loads into a plain model in this process, equal to the 1-proc weights
    ref, sharded = ToyNet(), ToyNet()
    load_model_weights(latest_checkpoint(tmp_path / "one"), ref)
    load_model_weights(latest_checkpoint(run_dir), sharded)
    for (name, a), b in zip(ref.state_dict().items(), sharded.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5), name


def test_launch_failure_raises_with_output_and_names_the_log(tmp_path):
    script = tmp_path / "fail.py"
    script.write_text("import os, sys\nprint('boom on rank', os.environ['RANK'])\nsys.exit(3)\n")
    with pytest.raises(RuntimeError, match=r"(?s)logs in .*boom on rank"):
        launch(str(script), nproc_per_node=2, log_dir=tmp_path / "logs", timeout=60)
    assert "boom on rank" in (tmp_path / "logs" / f"launch.{socket.gethostname()}.log").read_text()


def test_launch_timeout_kills_a_silent_job(tmp_path):
    script = tmp_path / "hang.py"
    script.write_text("import time\ntime.sleep(600)\n")
    with pytest.raises(subprocess.TimeoutExpired):
        launch(str(script), nproc_per_node=1, log_dir=tmp_path / "logs", timeout=3)


@pytest.mark.slow   # one torchrun launch
def test_rank0_streams_to_the_caller_and_other_ranks_to_their_logs(tmp_path, capfd):
    run_training(ENTRY, _config("ddp", 2) | {"say": "hello"}, run_dir=tmp_path, nproc_per_node=2, timeout=120)
    out = capfd.readouterr().out
    assert "hello from rank 0" in out and "hello from rank 1" not in out
    assert "hello from rank 1" in (tmp_path / "logs" / "rank1.log").read_text()
    assert "hello from rank 0" in (tmp_path / "logs" / f"launch.{socket.gethostname()}.log").read_text()


@pytest.mark.slow   # two torchrun launches
@pytest.mark.timeout(900)
def test_two_nodes_on_localhost_restart_after_a_crash_and_resume(tmp_path):
    """2 nodes x 1 process (two launchers, c10d on 127.0.0.1, node 0 hosting the rendezvous store), killed
    once mid-run: torchrun restarts the workers, which resume from the latest checkpoint and end where one
    uninterrupted process ends. (With torch's shared agent store the restarted workers could read the
    first attempt's gloo addresses and fail to connect: launch sets TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1.)"""
    one = run_training(ENTRY, _config("ddp", 1), run_dir=tmp_path / "one")
    endpoint = f"127.0.0.1:{_free_port()}"
    config = _config("ddp", 2) | {"crash_once_at": STEPS // 2}
    config["train"]["resume"] = "latest"
    results = {}

    def node(name):
        results[name] = run_training(ENTRY, config, run_dir=tmp_path / "two", nnodes=2, nproc_per_node=1,
                                     rdzv_endpoint=endpoint, max_restarts=1, timeout=600,
                                     env={"SHARED_NODE_NAME": name, "SHARED_NODE_RANK": name.removeprefix("node")})

    threads = [threading.Thread(target=node, args=(n,)) for n in ("node0", "node1")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(results) == {"node0", "node1"}, "a node's launcher raised (see its log under two/logs)"
    assert (tmp_path / "two" / "crashed_once").exists()
    assert {p.name for p in (tmp_path / "two" / "logs").glob("launch.*.log")} == {"launch.node0.log", "launch.node1.log"}
    history = results["node0"]
    steps = [r["step"] for r in history.train]
    assert steps[-1] == STEPS and STEPS // 2 in steps
    resumed = {r["step"]: r["loss"] for r in history.train}
    ref = {r["step"]: r["loss"] for r in one.train}
    assert max(abs(resumed[s] - ref[s]) for s in ref) < 1e-5


def test_rendezvous_ids_and_sbatch(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    a, b = run_rdzv_id(tmp_path / "a"), run_rdzv_id(tmp_path / "b")
    assert a != b and a == run_rdzv_id(tmp_path / "a" / ".." / "a")
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    assert run_rdzv_id(tmp_path / "a") != a
    sbatch = write_sbatch(tmp_path / "run", ["--entry-point", "m:f", "--config", "c.json", "--run-dir", "d"],
                          nnodes=4, nproc_per_node=8, sbatch_options=["--time=48:00:00"])
    text, node = sbatch.read_text(), (tmp_path / "run" / "launch.node.sh").read_text()
    assert "#SBATCH --nodes=4" in text and "#SBATCH --gpus-per-node=8" in text and "#SBATCH --time=48:00:00" in text
    assert "srun" in text and "launch.node.sh" in text
    assert "--nnodes 4 --nproc-per-node 8 --rdzv-backend c10d" in node and '"$SHARED_RDZV_HEAD:29500"' in node
    assert "-m shared.train.worker --entry-point m:f" in node
    # node 0 (the head) hosts the rendezvous store; every restart gets a fresh worker store
    assert '--rdzv-conf "is_host=$IS_HOST"' in node and "TORCH_DISABLE_SHARE_RDZV_TCP_STORE" in node
    for script in (sbatch, tmp_path / "run" / "launch.node.sh"):
        assert subprocess.run(["bash", "-n", str(script)]).returncode == 0, script


def test_node_rank_decides_the_rendezvous_host(monkeypatch):
    for var in ("SHARED_NODE_RANK", "SLURM_NODEID", "SLURM_STEP_NUM_NODES"):
        monkeypatch.delenv(var, raising=False)
    kw = dict(nnodes=2, rdzv_endpoint="127.0.0.1:29500")
    assert "--rdzv-conf" not in build_torchrun_command("t.py", **kw)    # unknown: torch guesses from the host
    for rank, flag in ((0, "is_host=1"), (1, "is_host=0")):
        cmd = build_torchrun_command("t.py", node_rank=rank, **kw)
        assert cmd[cmd.index("--rdzv-conf") + 1] == flag
    with pytest.raises(ValueError):
        build_torchrun_command("t.py", node_rank=2, **kw)
    assert default_node_rank(2) is None
    assert default_node_rank(2, {"SHARED_NODE_RANK": "1"}) == 1
    assert default_node_rank(2, {"SLURM_NODEID": "1", "SLURM_STEP_NUM_NODES": "2"}) == 1
    assert default_node_rank(2, {"SLURM_NODEID": "0", "SLURM_STEP_NUM_NODES": "1"}) is None   # not a step over the run
    assert child_environment()["TORCH_DISABLE_SHARE_RDZV_TCP_STORE"] == "1"
    monkeypatch.setenv("TORCH_DISABLE_SHARE_RDZV_TCP_STORE", "0")
    assert child_environment()["TORCH_DISABLE_SHARE_RDZV_TCP_STORE"] == "0"     # the caller's choice stands


def test_process_group_timeout_is_configurable(monkeypatch):
    monkeypatch.setenv("SHARED_PG_TIMEOUT_S", "120")
    assert process_group_timeout_s() == 120
    monkeypatch.setenv("SHARED_PG_TIMEOUT_S", "0")
    with pytest.raises(ValueError):
        process_group_timeout_s()


@pytest.mark.slow   # one torchrun launch
@pytest.mark.timeout(900)
def test_sharded_checkpoint_resumes_on_another_world_size(tmp_path):
    """FSDP2 on 2 ranks stops at step 5; one process resumes from the DCP checkpoint (weights and
    optimizer resharded, the data position global) and ends where one uninterrupted process ends."""
    one = run_training(ENTRY, _config("fsdp", 1), run_dir=tmp_path / "one")
    run_dir = tmp_path / "two_then_one"
    run_training(ENTRY, _config("fsdp", 2, until_step=STEPS // 2), run_dir=run_dir, nproc_per_node=2, timeout=300)
    with pytest.warns(UserWarning, match="resuming on 1 ranks from a checkpoint of 2 ranks"):
        resumed = run_training(ENTRY, _config("fsdp", 1), run_dir=run_dir)
    diff = _max_diff(one, resumed)
    print(f"FSDP2 2 ranks to step {STEPS // 2}, then 1 process: max |loss diff| vs 1 process = {diff:.3g}")
    assert diff < 1e-5


@pytest.mark.slow   # two torchrun launches
@pytest.mark.timeout(1200)
def test_fsdp_grad_op_two_processes_match_one_with_resume(tmp_path):
    """ZeRO-2 (fully_shard with reshard_after_forward=False) on 2 ranks, stopped, resumed from its sharded
    checkpoint: the updates of one process, and the parameters stay unsharded from forward to backward."""
    one = run_training(ENTRY, _config("fsdp_grad_op", 1), run_dir=tmp_path / "one")
    run_dir = tmp_path / "two"
    run_training(ENTRY, _config("fsdp_grad_op", 2, until_step=STEPS // 2), run_dir=run_dir, nproc_per_node=2,
                 timeout=300)
    assert (latest_checkpoint(run_dir) / "dcp").is_dir()  # sharded checkpoint
    two = run_training(ENTRY, _config("fsdp_grad_op", 2) | {"probe_sharding": True}, run_dir=run_dir,
                       nproc_per_node=2, timeout=300)
    diff = _max_diff(one, two)
    print(f"ZeRO-2 2 procs (stopped at {STEPS // 2}, resumed) vs 1: max |loss diff| = {diff:.3g}")
    assert diff < 1e-5
    assert json.loads((run_dir / "sharding_probe.json").read_text()) == {"unsharded_after_forward": True}


INF_STEP = 4


@pytest.mark.slow   # two torchrun launches
@pytest.mark.timeout(900)
@pytest.mark.parametrize("parallelism", ["ddp", "fsdp_grad_op"])
def test_amp_fp16_two_processes_match_one_and_skip_the_same_step(tmp_path, parallelism):
    """fp16 autocast with loss scaling: an inf gradient on rank 1 only, in a parameter shard rank 0 owns,
    makes both ranks skip that step and halve the scale (FSDP2: the DTensor unscale all-reduces the
    flag), as one process does; the losses match one process to fp16 rounding."""
    one = run_training(ENTRY, _config(parallelism, 1, precision="amp_fp16") | {"inf_grad": [INF_STEP, 0]},
                       run_dir=tmp_path / "one")
    two = run_training(ENTRY, _config(parallelism, 2, precision="amp_fp16") | {"inf_grad": [INF_STEP, 1]},
                       run_dir=tmp_path / "two", nproc_per_node=2, timeout=300)
    for history in (one, two):
        assert [r["skipped_steps"] for r in history.train] == [int(s >= INF_STEP) for s in range(1, STEPS + 1)]
        assert [r["loss_scale"] for r in history.train] == [2.0 ** (16 - (s >= INF_STEP)) for s in range(1, STEPS + 1)]
    diff = _max_diff(one, two)
    print(f"amp_fp16 {parallelism} 2 procs vs 1: max |loss diff| = {diff:.3g}")
    assert diff < 2e-3
    ref, sharded = ToyNet(), ToyNet()
    load_model_weights(latest_checkpoint(tmp_path / "one"), ref)
    load_model_weights(latest_checkpoint(tmp_path / "two"), sharded)
    for (name, a), b in zip(ref.state_dict().items(), sharded.state_dict().values()):
        assert torch.allclose(a, b, atol=2e-3), name
