"""The CPU rehearsal of the full presets (``python ci/run_notebooks.py --scale full --rehearse --paper
example_difficulty``; ``ci/rehearsal.py``).

01_train_runs at scale full: every architecture of the full preset on CIFAR-10 and then CIFAR-100, read from a
data_dir in the binary versions' layout (50 training and 20 test images each), each run a job of
``shared.train.jobs`` on 2 nodes of 1 slot each (the rehearsal's nnodes=2 x nproc_per_node=1: two node
processes on this machine, each claiming the next unfinished job); one job per data set preempted once after its first
periodic checkpoint (SHARED_REHEARSAL_CRASH=1, ``PREEMPT_KINDS``) and restarted, resuming from it. Shrunk: 2 epochs of batch 10 (5
steps each), a checkpoint every epoch, 1 run per architecture, GraNd and EL2N at epochs 1 and 2 (the full
preset's 10 and 20), GraNd chunks of 10, the MLP's hidden widths and the VGG and ResNet widths and depths (the
ResNet-20/-32/-50 and VGG-11/-13/-16/-19 variants keep their family and their order of sizes); the
``cifar-vgg-16`` and ``cifar-resnet-20`` flavours stay as they are. Everything else is the full preset's: both
data sets, SGD with the step schedule and the MLP's own Adam, fp32, crops and flips, every training example
scored, one evaluation per epoch, prediction depth on the labels streamed layer by layer with k = 30.

02_analysis is not rehearsed: it trains nothing, and at full scale it needs at least 3 runs of each of the 14
architectures (the fingerprint test holds one run of each out and needs more runs than architectures left), 84
training jobs on each data set, beyond the rehearsal's few minutes. (Run on 2 runs each, it read both data sets'
scores files and stopped only at that check.)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

TRAIN_EXAMPLES, TEST_EXAMPLES = 50, 20
# one job preempted per data set: the jobs of a data set take the same path through a restart
PREEMPT_KINDS = {"01_train_runs": ["spec.data.name"]}
NOTEBOOKS = {
    "01_train_runs": {
        "epochs": 2, "checkpoint_epochs": 1, "runs_per_arch": 1, "grand_epoch": [1, 2], "el2n_epoch": [1, 2],
        "grand_batch_size": 10, "train": {"global_batch_size": 10},
        "archs": {"mlp": "cifar-mlp-1024-512-128",
                  "resnet20_w8": {"width": 4, "blocks": 1}, "resnet20_w32": {"width": 8, "blocks": 1},
                  "resnet20_w64": {"width": 8, "blocks": 1}, "resnet32": {"width": 4, "blocks": 2},
                  "resnet50": {"width": 4, "blocks": 2},
                  "vgg16_w16": {"vgg_layers": [4, "M", 8]}, "vgg16_w32": {"vgg_layers": [8, "M", 16]},
                  "vgg16_w128": {"vgg_layers": [16, "M", 32]}, "vgg11": {"vgg_layers": [8, "M", 16]},
                  "vgg13": {"vgg_layers": [8, 8, "M", 16]}, "vgg19": {"vgg_layers": [8, 8, "M", 16, 16]}},
    },
}


def _records(rng: np.random.Generator, n: int, label_bytes: list[np.ndarray]) -> np.ndarray:
    pixels = rng.integers(0, 256, size=(n, 3 * 32 * 32), dtype=np.uint8)
    return np.concatenate([*(b.astype(np.uint8)[:, None] for b in label_bytes), pixels], axis=1)


def make_data_dir(root: Path) -> None:
    """CIFAR-10's and CIFAR-100's binary versions at toy size, where the full preset reads them:
    ``cifar-10-batches-bin/data_batch_{1..5}.bin`` and ``test_batch.bin``, ``cifar-100-binary/train.bin`` and
    ``test.bin`` (random pixels; labels cycling through the classes)."""
    rng = np.random.default_rng(0)
    c10 = root / "cifar-10-batches-bin"
    c10.mkdir(parents=True, exist_ok=True)
    per_batch = TRAIN_EXAMPLES // 5
    for i in range(1, 6):
        _records(rng, per_batch, [np.arange(per_batch) % 10]).tofile(c10 / f"data_batch_{i}.bin")
    _records(rng, TEST_EXAMPLES, [np.arange(TEST_EXAMPLES) % 10]).tofile(c10 / "test_batch.bin")
    c100 = root / "cifar-100-binary"
    c100.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", TRAIN_EXAMPLES), ("test", TEST_EXAMPLES)):
        fine = np.arange(n) * 7 % 100
        _records(rng, n, [fine // 5, fine]).tofile(c100 / f"{split}.bin")
