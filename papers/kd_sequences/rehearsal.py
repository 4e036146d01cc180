"""The CPU rehearsal of the full presets (``python ci/run_notebooks.py --scale full --rehearse --paper
kd_sequences``; ``ci/rehearsal.py``).

01_sequences at scale full: CIFAR-10 read from a data_dir in the binary version's layout (100 training and 20
test images), both sequences, every method (scratch, kd, kd_early, kd_sparse), each training a part of a job of
``shared.train.jobs`` (on the rehearsal's 2 nodes, nproc_per_node=1 job at a time on each): first the run-0 job of each
sequence, then one job per sequence and method training its chain of later runs at every budget (the full-budget
model of run k teaching run k + 1). Every job is preempted once after its first periodic checkpoint
(SHARED_REHEARSAL_CRASH=1) and restarted: a run-0 job resumes its training from the checkpoint; a chain job
keeps its finished training (run 1 at 2 steps, checkpointed only at its last step) and resumes the interrupted one
(run 1 at 4 steps). Shrunk: a full budget of 4 steps of 10 examples, budgets 1/2 and 1 of it (2 and 4 steps), a
checkpoint every 2 steps, 3 runs per sequence (the first three learning rates and data fractions: run 2 learns
from run 1's model), 1 seed.
Everything else is the full preset's: ResNet-20, SGD with momentum and the step schedule, fp32, crops and flips,
the distillation's temperature and alpha and the strategies' schedules.

02_figures (UNLAUNCHED: it trains nothing) runs at full on 01_sequences' outputs as they are.

01_sequences' rehearsal took 74 s here (2 CPU cores), 150 s while another heavy job shared them: its 10 jobs
(2 sequences x (run 0 + 4 methods), 1 seed) each start twice (the preemption), and a start costs about 8 s
(imports, torch's compiler stack loaded by the first optimizer) against about 2 s of training. Fewer jobs would
need fewer sequences or strategies, which overrides cannot remove (they merge into the preset's).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

TRAIN_EXAMPLES, TEST_EXAMPLES = 100, 20
NOTEBOOKS = {
    "01_sequences": {
        "train": {"max_steps": 4, "global_batch_size": 10}, "budget_fractions": [0.5, 1.0], "checkpoint_every": 2,
        "seeds": [0],
        "sequences": {"hparam_search": {"lrs": [0.1, 0.05, 0.2]}, "new_data": {"data_fractions": [0.4, 0.6, 0.8]}},
    },
}
UNLAUNCHED = {"02_figures": {}}


def _records(rng: np.random.Generator, n: int) -> np.ndarray:
    pixels = rng.integers(0, 256, size=(n, 3 * 32 * 32), dtype=np.uint8)
    return np.concatenate([(np.arange(n) % 10).astype(np.uint8)[:, None], pixels], axis=1)


def make_data_dir(root: Path) -> None:
    """CIFAR-10's binary version at toy size, where the full preset reads it:
    ``cifar-10-batches-bin/data_batch_{1..5}.bin`` and ``test_batch.bin`` (random pixels; labels cycling
    through the classes)."""
    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, 6):
        _records(rng, TRAIN_EXAMPLES // 5).tofile(folder / f"data_batch_{i}.bin")
    _records(rng, TEST_EXAMPLES).tofile(folder / "test_batch.bin")
