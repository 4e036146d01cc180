"""torchrun worker: `python -m shared.train.worker --entry-point M:F --config cfg.json --run-dir D`.

Joins the process group (shared.train.distributed.init_distributed), calls F(config, run_dir)
on every rank, and leaves the group. Started by shared.train.runner.run_training.
"""
from __future__ import annotations

import argparse
import json

from .distributed import cleanup_distributed, init_distributed
from .runner import load_entry_point


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entry-point", required=True, help="package.module:function or file.py:function")
    parser.add_argument("--config", required=True, help="JSON file passed to the function as a dict")
    parser.add_argument("--run-dir", required=True)
    args = parser.parse_args(argv)
    with open(args.config) as f:
        config = json.load(f)
    init_distributed()
    try:
        load_entry_point(args.entry_point)(config, args.run_dir)
    finally:
        cleanup_distributed()


if __name__ == "__main__":
    main()
