"""Run a training entry point in this process (world size 1) or under torchrun, and read its
metrics back. This is what notebooks call:

    from shared.train import run_training
    history = run_training("papers.mosaicbert.train:main", cfg, run_dir=run.out_dir / "train",
                           nproc_per_node=nproc_per_node, nnodes=nnodes)
    history.to_frame("train")   # the JSONL metrics log, read back

The entry point is "package.module:function" or "path/to/file.py:function"; the function takes
`(config: dict, run_dir: str)`, builds model, data and a `Trainer(..., TrainConfig(run_dir=run_dir,
...))` and calls `fit()`. Its config must be JSON-serializable: with more than one process it is
written to `run_dir/launch_config.json`, torchrun starts `python -m shared.train.worker` on every
rank, and each worker joins the process group and calls the same function. Local rank 0's output
streams into the caller (the notebook) while the job runs and goes to
`run_dir/logs/launch.<host>.log`; other ranks write `run_dir/logs/rank<R>.log`.

Multi-node (nnodes > 1) needs `rdzv_endpoint="host:port"` (default: SHARED_RDZV_ENDPOINT, which
notebooks set from their `rdzv_endpoint` parameter). With launcher "local" this call starts the local
node's workers, and every other node runs the same notebook (or the logged command); with launcher
"slurm" (default: SHARED_LAUNCHER) it writes `run_dir/launch.sbatch` and submits it, so one command
starts all nodes. Failed workers restart up to `max_restarts` times (default SHARED_MAX_RESTARTS, else
2 on several nodes and 0 on one); entry points that train with `resume="latest"` continue from their
latest checkpoint.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .launch import (
    build_torchrun_command,
    default_launcher,
    default_node_rank,
    default_rdzv_endpoint,
    launch,
    launch_localhost,
    run_rdzv_id,
    submit_slurm,
    write_sbatch,
)
from .metrics import METRICS_FILE, History

log = logging.getLogger(__name__)


def load_entry_point(spec: str) -> Callable[[dict, str], Any]:
    """The function named by "package.module:function" or "path/to/file.py:function"."""
    target, sep, name = spec.rpartition(":")
    if not sep or not target or not name:
        raise ValueError(f"entry point {spec!r} must look like 'package.module:function' or "
                         "'path/to/file.py:function'")
    if target.endswith(".py"):
        path = Path(target).resolve()
        if not path.is_file():
            raise ValueError(f"entry point file {path} does not exist")
        mod_spec = importlib.util.spec_from_file_location(f"_entry_{path.stem}", path)
        module = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    fn = getattr(module, name, None)
    if not callable(fn):
        raise ValueError(f"entry point {spec!r}: {name} is not a function of {target}")
    return fn


def _absolute(spec: str) -> str:
    target, _, name = spec.rpartition(":")
    return f"{Path(target).resolve()}:{name}" if target.endswith(".py") else spec


def default_max_restarts(nnodes: int) -> int:
    value = os.environ.get("SHARED_MAX_RESTARTS")
    return int(value) if value is not None else (2 if nnodes > 1 else 0)


def run_training(entry_point: str, config: dict[str, Any], *, run_dir: str | Path,
                 nproc_per_node: int = 1, nnodes: int = 1, rdzv_endpoint: str | None = None,
                 launcher: str | None = None, max_restarts: int | None = None,
                 env: dict[str, str] | None = None, timeout: float | None = None,
                 node_rank: int | None = None) -> History:
    """Run `entry_point(config, run_dir)` on nproc_per_node * nnodes processes; return the
    History read from run_dir/metrics.jsonl (empty if the entry point logged nothing).
    `node_rank` (launcher "local", several nodes): this node's rank, 0 on the node the endpoint names,
    which then hosts the rendezvous store (default: SHARED_NODE_RANK, or SLURM_NODEID under srun)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    launcher = launcher or default_launcher()
    if nproc_per_node * nnodes == 1 and launcher == "local":
        load_entry_point(entry_point)(config, str(run_dir))
    else:
        cfg_path = run_dir / "launch_config.json"
        cfg_path.write_text(json.dumps(config, indent=1))
        args = ["--entry-point", _absolute(entry_point), "--config", str(cfg_path.resolve()),
                "--run-dir", str(run_dir.resolve())]
        restarts = default_max_restarts(nnodes) if max_restarts is None else max_restarts
        if launcher == "slurm":
            sbatch = write_sbatch(run_dir, args, nnodes=nnodes, nproc_per_node=nproc_per_node,
                                  max_restarts=restarts)
            log.info("submitting %s", sbatch)
            code = submit_slurm(sbatch)
            if code != 0:
                raise RuntimeError(f"SLURM job {sbatch} failed (exit {code}); logs in {run_dir / 'logs'}")
        elif launcher == "localhost":
            launch_localhost("shared.train.worker", args, nnodes=nnodes, nproc_per_node=nproc_per_node, module=True,
                             rdzv_endpoint=rdzv_endpoint or default_rdzv_endpoint(), rdzv_id=run_rdzv_id(run_dir),
                             max_restarts=restarts, env=env, log_dir=run_dir / "logs", timeout=timeout)
        else:
            endpoint = rdzv_endpoint or default_rdzv_endpoint()
            if node_rank is None and nnodes > 1:
                node_rank = default_node_rank(nnodes, {**os.environ, **(env or {})})
            kwargs = dict(nproc_per_node=nproc_per_node, nnodes=nnodes, module=True, rdzv_endpoint=endpoint,
                          rdzv_id=run_rdzv_id(run_dir), max_restarts=restarts, node_rank=node_rank)
            cmd = build_torchrun_command("shared.train.worker", args, **kwargs)
            log.info("launching (run the same on every node, with its own SHARED_NODE_RANK): %s", " ".join(cmd))
            launch("shared.train.worker", args, **kwargs, env=env, log_dir=run_dir / "logs", echo=True,
                   timeout=timeout)
    metrics = run_dir / METRICS_FILE
    return History.from_run_dir(run_dir) if metrics.exists() else History()
