"""Typed presets of every example_difficulty notebook, every scale (plain literals; `overrides` change keys).

smoke: a 2-core CPU. Digits (stratified 70/30 split, scores on the 1,258 training examples), MLP, LeNet and
       a small ResNet, 8 runs each, 12 epochs of AdamW.
small: one GPU: wider models, a VGG too, 16 runs each, 20 epochs.
full:  the paper's models on CIFAR-10 from data_dir (open_lth: cifar_resnet_20, cifar_vgg_16,
       cifar_lenet_1024_512_128; 160 epochs, SGD 0.1, momentum 0.9, wd 1e-4, batch 128, pad-4 crops and
       flips). open_lth drops the LR 10x at epochs 80 and 120; the shared trainer has no step schedule,
       so this runs cosine decay instead. Scores are recorded on a fixed subset of 10,000 training
       examples (prediction depth's k-NN over every layer of 50,000 does not fit in memory).
"""
from __future__ import annotations

from dataclasses import dataclass

from shared.experiment.presets import NotebookPresets
from shared.utils.config import StrictConfig

from .runs import TrainRunsSpec

DIGITS = {"data": {"name": "digits", "test_fraction": 0.3, "split_seed": 0}, "score_examples": None,
          "train": {"global_batch_size": 64, "optimizer": "adamw", "lr": 3e-3, "weight_decay": 5e-4, "augment": None},
          "evals_per_epoch": 2, "grand_epoch": 1, "pd_k": 15, "threads": 1}

TRAIN_RUNS = {
    "smoke": {**DIGITS, "runs_per_arch": 8, "epochs": 12,
              "archs": {"mlp": {"arch": "mlp", "hidden": [64]},
                        "lenet": {"arch": "lenet", "channels": [8, 16], "hidden": [32]},
                        "resnet": {"arch": "resnet", "width": 8, "blocks": 1}}},
    "small": {**DIGITS, "runs_per_arch": 16, "epochs": 20, "threads": 0,
              "archs": {"mlp": {"arch": "mlp", "hidden": [256, 128]},
                        "lenet": {"arch": "lenet", "channels": [16, 32], "hidden": [64]},
                        "resnet": {"arch": "resnet", "width": 16, "blocks": 2},
                        "vgg": {"arch": "vgg", "vgg_layers": [32, "M", 64, "M", 128]}}},
    "full": {"data": {"name": "cifar10", "test_fraction": None}, "needs_data_dir": True, "score_examples": 10000,
             "train": {"global_batch_size": 128, "optimizer": "sgd", "momentum": 0.9, "lr": 0.1, "weight_decay": 1e-4,
                       "augment": {"pad": 4, "flip": True}},
             "evals_per_epoch": 1, "grand_epoch": 10, "pd_k": 30, "threads": 0, "runs_per_arch": 10, "epochs": 160,
             "archs": {"mlp": "cifar-mlp-1024-512-128", "vgg": "cifar-vgg-16", "resnet": "cifar-resnet-20"}},
}


@dataclass
class AnalysisSpec(StrictConfig):
    """02_analysis. scores_dir: 01_train_runs' out_dir (None: its sibling folder). main_arch: the
    architecture of the variance and covariance analyses; fingerprint_*: the fingerprint test (score,
    numbers of examples k, held-out splits, the accuracy the claim asks for); correlation_splits: random
    splits of the runs for the correlation-vs-runs curve; pc1_min_share: the covariance claim's threshold."""

    scores_dir: str | None = None
    main_arch: str = "resnet"
    fingerprint_score: str = "el2n"
    fingerprint_ks: tuple[int, ...] = (1, 2, 3, 5, 10, 20, 50)
    fingerprint_splits: int = 50
    correlation_splits: int = 30
    fingerprint_min_accuracy: float = 0.9
    pc1_min_share: float = 0.5


ANALYSIS_BASE = {"scores_dir": None, "main_arch": "resnet", "fingerprint_score": "el2n",
                 "fingerprint_ks": [1, 2, 3, 5, 10, 20, 50], "fingerprint_splits": 50, "correlation_splits": 30,
                 "fingerprint_min_accuracy": 0.9, "pc1_min_share": 0.5}
ANALYSIS = {"smoke": ANALYSIS_BASE, "small": ANALYSIS_BASE,
            "full": {**ANALYSIS_BASE, "fingerprint_ks": [1, 2, 3, 5, 10, 20, 50, 100, 300]}}

NOTEBOOKS: dict[str, NotebookPresets] = {
    "01_train_runs": NotebookPresets(TrainRunsSpec, TRAIN_RUNS),
    "02_analysis": NotebookPresets(AnalysisSpec, ANALYSIS),
}
