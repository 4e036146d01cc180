"""Two CPU processes on gloo under torchrun match one process at the same global batch:
DDP, and FSDP2 (fully_shard) including a stop, sharded checkpoint and resume across launches."""
from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from _train_toy import ToyNet
from shared.train import latest_checkpoint, launch, load_model_weights, run_training

ENTRY = f"{Path(__file__).with_name('_train_toy.py')}:entry"
GLOBAL_BATCH, STEPS = 16, 10


def _config(parallelism, world, optimizer="adamw", until_step=None):
    train = dict(max_steps=STEPS, lr=1e-2, optimizer=optimizer, weight_decay=0.1, warmup_steps=2,
                 grad_accum=2, parallelism=parallelism, progress_bar=False, keep_last_n=1)
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
    two = run_training(ENTRY, _config("fsdp", 2, "lionw"), run_dir=run_dir, nproc_per_node=2,
                       timeout=120)
    diff = _max_diff(one, two)
    print(f"FSDP2 2 procs (stopped at {STEPS // 2}, resumed) vs 1: max |loss diff| = {diff:.3g}")
    assert diff < 1e-5
    # the sharded checkpoint loads into a plain model in this process, equal to the 1-proc weights
    ref, sharded = ToyNet(), ToyNet()
    load_model_weights(latest_checkpoint(tmp_path / "one"), ref)
    load_model_weights(latest_checkpoint(run_dir), sharded)
    for (name, a), b in zip(ref.state_dict().items(), sharded.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5), name


def test_launch_failure_raises_with_output(tmp_path):
    script = tmp_path / "fail.py"
    script.write_text("import os, sys\nprint('boom on rank', os.environ['RANK'])\nsys.exit(3)\n")
    with pytest.raises(RuntimeError, match="boom on rank"):
        launch(str(script), nproc_per_node=2, log_file=tmp_path / "log.txt", timeout=60)
