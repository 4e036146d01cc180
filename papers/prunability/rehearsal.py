"""The CPU rehearsal of the full presets (``python ci/run_notebooks.py --scale full --rehearse --paper
prunability``; ``ci/rehearsal.py``).

01_manifolds and 01_images at scale full: every architecture of the full preset, each IMP run (architecture x
dimension x seed) a job of ``shared.train.jobs`` (the rehearsal's 2 nodes, one job at a time on each),
preempted once after its first periodic checkpoint (SHARED_REHEARSAL_CRASH=1, in the dense level: after the
rewind step of 01_images, so the resumed level rewinds to the snapshot its checkpoint carried) and restarted,
resuming from it. Shrunk: two dimensions (the smallest, and 8 / the full pixel count), one seed, 2 IMP levels
of 6 steps with a checkpoint every 3, the MLP widths and LeNet channels, 200 + 100 generated examples (in the
full preset's ambient R^1024, labels over 10 classes), CIFAR-10 at 50 training and 20 test images of random
pixels, batches of 10 for images; 01_images rewinds to step 2 (the full preset's 2000 is past the shrunk
schedule), and its ``cifar-mlp-1024-512-128`` and ``cifar-resnet-20`` flavours stay as they are. Everything
else is the full preset's: SGD (constant LR for the manifolds, the step schedule for CIFAR), fp32, each level
retrained from the rewind step to the end, the dense output layers, 20% pruned per level, the grayscale data
read from data_dir.

02_figures (UNLAUNCHED: it trains nothing) runs at full on both 01 notebooks' outputs as they are.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

TRAIN_EXAMPLES, TEST_EXAMPLES = 50, 20
LEVELS = {"levels": 2}
NOTEBOOKS = {
    "01_manifolds": {
        "data": {"n_train": 200, "n_test": 100, "hidden": 64}, "dims": [2, 8], "seeds": [0],
        "archs": {"mlp": {"arch": "mlp", "hidden": [16, 8]},
                  "lenet": {"arch": "lenet", "channels": [4, 8], "hidden": [16]}},
        "train": {"max_steps": 6}, "imp": LEVELS, "checkpoint_every": 3,
    },
    "01_images": {
        "dims": [8, 1024], "seeds": [0], "train": {"max_steps": 6, "global_batch_size": 10},
        "imp": {**LEVELS, "rewind_step": 2}, "checkpoint_every": 3,
    },
}
UNLAUNCHED = {"02_figures": {}}          # trains nothing: the figures of both 01 notebooks' full-scale outputs


def _records(rng: np.random.Generator, n: int) -> np.ndarray:
    labels = (np.arange(n) % 10).astype(np.uint8)[:, None]
    return np.concatenate([labels, rng.integers(0, 256, size=(n, 3 * 32 * 32), dtype=np.uint8)], axis=1)


def make_data_dir(root: Path) -> None:
    """CIFAR-10's binary version at toy size, where the full 01_images preset reads it:
    ``cifar-10-batches-bin/data_batch_{1..5}.bin`` and ``test_batch.bin`` (random pixels; labels cycling
    through the classes)."""
    rng = np.random.default_rng(0)
    folder = Path(root) / "cifar-10-batches-bin"
    folder.mkdir(parents=True, exist_ok=True)
    per_batch = TRAIN_EXAMPLES // 5
    for i in range(1, 6):
        _records(rng, per_batch).tofile(folder / f"data_batch_{i}.bin")
    _records(rng, TEST_EXAMPLES).tofile(folder / "test_batch.bin")
