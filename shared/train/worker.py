"""torchrun worker: `python -m shared.train.worker --entry-point M:F --config cfg.json --run-dir D`.

Joins the process group (shared.train.distributed.init_distributed), calls F(config, run_dir)
on every rank, and leaves the group. Started by shared.train.runner.run_training.

Ranks other than local rank 0 write their output to `$SHARED_RANK_LOG_DIR/rank<R>.log` (appended
across restarts), so each node's console (and its launch log) carries one rank's lines.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .distributed import cleanup_distributed, init_distributed
from .runner import load_entry_point


def redirect_other_ranks() -> None:
    """Send this process's stdout/stderr to its rank log unless it is local rank 0."""
    log_dir = os.environ.get("SHARED_RANK_LOG_DIR")
    if not log_dir or int(os.environ.get("LOCAL_RANK", 0)) == 0:
        return
    Path(log_dir).mkdir(parents=True, exist_ok=True)
    log = open(Path(log_dir) / f"rank{os.environ.get('RANK', '0')}.log", "a", buffering=1)  # open for the process lifetime
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entry-point", required=True, help="package.module:function or file.py:function")
    parser.add_argument("--config", required=True, help="JSON file passed to the function as a dict")
    parser.add_argument("--run-dir", required=True)
    args = parser.parse_args(argv)
    redirect_other_ranks()
    with open(args.config) as f:
        config = json.load(f)
    init_distributed()
    try:
        load_entry_point(args.entry_point)(config, args.run_dir)
    finally:
        cleanup_distributed()


if __name__ == "__main__":
    main()
