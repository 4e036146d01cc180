"""Trainer callback: the CPU time this process spends in training steps.

On a CPU shared with other jobs, the trainer's wall-clock ``elapsed_s`` moves with the neighbours'
load; the process's own CPU time (``time.process_time``) barely does, and with one thread it is the
time the steps would take alone. ``ProcessClock`` accumulates it over training steps only (time in
evaluation and checkpointing excluded, like ``elapsed_s``) and appends ``{"step", "cpu_s"}`` to
``run_dir/process_time.jsonl`` at every logged step; a resumed run continues from the value at the
step it resumes from. Read it back with ``read_process_time(run_dir)``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

FILE = "process_time.jsonl"


def read_process_time(run_dir: str | Path) -> dict[int, float]:
    """{step: CPU seconds of training up to that step} (empty if the run logged none)."""
    path = Path(run_dir) / FILE
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            out[int(r["step"])] = float(r["cpu_s"])
    return out


class ProcessClock:
    def __init__(self, run_dir: str | Path | None):
        self.path = None if run_dir is None else Path(run_dir) / FILE
        self.total = 0.0
        self.last = time.process_time()

    def on_fit_start(self, trainer) -> None:
        if self.path is not None and trainer.dist.is_main:
            kept = {s: v for s, v in read_process_time(self.path.parent).items() if s <= trainer.step}
            self.total = kept.get(max(kept), 0.0) if kept else 0.0
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("".join(json.dumps({"step": s, "cpu_s": v}) + "\n" for s, v in sorted(kept.items())))
        self.last = time.process_time()

    def on_step_end(self, trainer, record) -> None:
        now = time.process_time()
        self.total += now - self.last
        self.last = now
        if record is not None and self.path is not None and trainer.dist.is_main:
            with self.path.open("a") as f:
                f.write(json.dumps({"step": trainer.step, "cpu_s": self.total}) + "\n")

    def on_eval_end(self, trainer, record) -> None:
        self.last = time.process_time()

    def on_checkpoint(self, trainer, path) -> None:
        self.last = time.process_time()
