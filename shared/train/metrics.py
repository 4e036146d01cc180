"""The JSONL metrics log and the `History` a fit returns.

One JSON object per line, each with `kind` and `step` (optimizer updates completed):

    {"kind": "train", "step": 10, "loss": 2.31, "lr": 0.001, "grad_norm": 0.8,
     "tokens_per_s": 5400.0, "samples_per_s": 42.1, "mfu": null, "tokens": 40960,
     "samples": 320, "elapsed_s": 7.6, ...loss_fn metrics...}
    {"kind": "eval", "step": 10, "val/loss": 2.40, ...}

`loss` and the loss_fn metrics are means over the global batch (all micro-batches and ranks);
`tokens` and `samples` are cumulative global counts; rates are global, measured over the steps
since the previous train record, excluding eval and checkpoint time.
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item") and callable(value.item):  # 0-d tensors, numpy scalars
        return value.item()
    return value


class MetricsLogger:
    """Appends records to `path` (flushed per record); None `path` keeps them in memory only."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def log(self, record: dict[str, Any]) -> dict[str, Any]:
        record = {k: _jsonable(v) for k, v in record.items()}
        if self.path is not None:
            with self.path.open("a") as f:
                f.write(json.dumps(record) + "\n")
        return record

    def truncate_after(self, step: int) -> list[dict[str, Any]]:
        """Drop records with step > `step` (written after the checkpoint a run resumes from, and
        about to be recomputed); return the records kept."""
        if self.path is None or not self.path.exists():
            return []
        kept = [r for r in read_metrics(self.path) if r.get("step", 0) <= step]
        tmp = self.path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in kept))
        tmp.replace(self.path)
        return kept

    def reset(self) -> None:
        if self.path is not None and self.path.exists():
            self.path.unlink()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Records of a metrics JSONL file, or of `<run_dir>/metrics.jsonl` when given a directory.
    A last line cut short by a crash is skipped."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    records = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


class History:
    """Records of one run, in order. `train` and `eval` filter by kind."""

    def __init__(self, records: Iterable[dict[str, Any]] = ()):
        self.records = list(records)

    def __len__(self) -> int:
        return len(self.records)

    def __repr__(self) -> str:
        return f"History({len(self.train)} train records, {len(self.eval)} eval records)"

    @property
    def train(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("kind") == "train"]

    @property
    def eval(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("kind") == "eval"]

    def series(self, key: str, kind: str | None = None) -> tuple[list[int], list[float]]:
        """(steps, values) of every record (of `kind`, if given) that has `key`."""
        rows = [r for r in self.records if key in r and (kind is None or r.get("kind") == kind)]
        return [r["step"] for r in rows], [r[key] for r in rows]

    @property
    def losses(self) -> list[float]:
        return self.series("loss", "train")[1]

    def final(self, key: str) -> float:
        """Last value of `key` (NaN if it never appeared)."""
        values = self.series(key)[1]
        return values[-1] if values else math.nan

    def to_frame(self, kind: str | None = None):
        import pandas as pd
        rows = self.records if kind is None else [r for r in self.records if r.get("kind") == kind]
        return pd.DataFrame(rows)

    @classmethod
    def from_run_dir(cls, run_dir: str | Path) -> History:
        return cls(read_metrics(run_dir))
