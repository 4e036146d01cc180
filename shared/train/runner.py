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
rank, and each worker joins the process group and calls the same function. Worker output goes to
`run_dir/launch.log`.

Multi-node (nnodes > 1) needs `rdzv_endpoint="host:port"`; this call launches the local node's
workers only, and the other nodes must run the same command (it is logged; see
shared.train.distributed for SLURM).
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .distributed import build_torchrun_command, launch
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


def run_training(entry_point: str, config: dict[str, Any], *, run_dir: str | Path,
                 nproc_per_node: int = 1, nnodes: int = 1, rdzv_endpoint: str | None = None,
                 env: dict[str, str] | None = None, timeout: float | None = None) -> History:
    """Run `entry_point(config, run_dir)` on nproc_per_node * nnodes processes; return the
    History read from run_dir/metrics.jsonl (empty if the entry point logged nothing)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if nproc_per_node * nnodes == 1:
        load_entry_point(entry_point)(config, str(run_dir))
    else:
        cfg_path = run_dir / "launch_config.json"
        cfg_path.write_text(json.dumps(config, indent=1))
        args = ["--entry-point", _absolute(entry_point), "--config", str(cfg_path.resolve()),
                "--run-dir", str(run_dir.resolve())]
        cmd = build_torchrun_command("shared.train.worker", args, nproc_per_node=nproc_per_node,
                                     nnodes=nnodes, module=True, rdzv_endpoint=rdzv_endpoint)
        log.info("launching (run the same on every node): %s", " ".join(cmd))
        launch("shared.train.worker", args, nproc_per_node=nproc_per_node, nnodes=nnodes,
               module=True, rdzv_endpoint=rdzv_endpoint, env=env,
               log_file=run_dir / "launch.log", timeout=timeout)
    metrics = run_dir / METRICS_FILE
    return History.from_run_dir(run_dir) if metrics.exists() else History()
