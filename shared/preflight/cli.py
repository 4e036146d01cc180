"""``python -m shared.preflight PAPER [--notebook NB] --scale full --nproc-per-node N --nnodes M
--gpu h100-80gb [--data-dir D] [--mfu 0.4] [--json] [--config]``: the preflight report of a paper's
training runs (shared.preflight.report); exit status 1 when it names an error, 2 on a usage error."""
from __future__ import annotations

import argparse
import json
import sys

from shared.experiment.params import SCALES

from .gpus import GPUS
from .plan import World
from .report import DEFAULT_MFU, format_report, preflight


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m shared.preflight", description=__doc__.split("\n\n")[0])
    p.add_argument("paper", help="a folder of papers/, e.g. biomedlm")
    p.add_argument("--notebook", action="append", help="only this notebook (repeatable; default: all)")
    p.add_argument("--scale", default="full", choices=list(SCALES))
    p.add_argument("--nproc-per-node", type=int, default=1)
    p.add_argument("--nnodes", type=int, default=1)
    p.add_argument("--gpu", default="h100-80gb", choices=list(GPUS))
    p.add_argument("--data-dir", default=None, help="check the data and checkpoints the presets name")
    p.add_argument("--mfu", type=float, default=DEFAULT_MFU, help="model FLOPs utilisation for gpu_hours")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--config", action="store_true", help="also print each run's resolved preset (text mode)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        report = preflight(args.paper, args.notebook, scale=args.scale,
                           world=World(args.nproc_per_node, args.nnodes), gpu=args.gpu, data_dir=args.data_dir,
                           mfu=args.mfu)
    except ValueError as e:
        print(f"preflight: {e}", file=sys.stderr)
        return 2
    print(json.dumps(report, default=str) if args.json else format_report(report, show_config=args.config))
    return 1 if report["errors"] else 0


__all__ = ["main", "parser"]
