"""Typed presets of every example_difficulty notebook, every scale (plain literals; `overrides` change keys).

smoke: a 2-core CPU. Digits (stratified 70/30 split, scores on the 1,258 training examples), MLP, LeNet and
       a small ResNet, 8 runs each, 12 epochs of AdamW.
small: one GPU: wider models, a VGG too, 16 runs each, 20 epochs.
full:  the authors' open_lth runs (devinkwok/open_lth scripts/run-metrics.sh, all-run-metrics.sh;
       nn_example_difficulty scripts/train_models.sh) on CIFAR-10, then CIFAR-100, from data_dir (each
       trained and scored on its own, results per data set): ResNet-20 at widths 8-64, ResNet-32/50,
       VGG-16 at widths 16-128, VGG-11/13/19 and the MLP 1024-512-128, 5 runs each, 160 epochs of the
       open_lth recipe (SGD 0.1, momentum 0.9, wd 1e-4, batch 128, LR / 10 at epochs 80 and 120, pad-4
       crops and flips; the MLP: Adam 1e-3), every score on all 50,000 training examples, recorded every
       epoch (GraNd and EL2N at epochs 10 and 20), prediction depth streamed layer by layer. Each value's
       source is in the README's recipe card.
"""
from __future__ import annotations

from dataclasses import dataclass

from shared.experiment.presets import NotebookPresets
from shared.utils.config import StrictConfig

from .runs import TrainRunsSpec

DIGITS = {"data": {"name": "digits", "test_fraction": 0.3, "split_seed": 0}, "score_examples": None,
          "train": {"global_batch_size": 64, "optimizer": "adamw", "lr": 3e-3, "weight_decay": 5e-4, "augment": None},
          "evals_per_epoch": 2, "grand_epoch": 1, "pd_k": 15, "threads": 1}

# open_lth's CIFAR VGG plans (convs per stage, 2x2 max pool between stages; stage widths W, 2W, 4W, 8W, 8W)
VGG_STAGES = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}


def _vgg(depth: int, width: int) -> list:
    """open_lth's cifar_vgg_<depth>_<width> plan as vgg_layers (conv widths and "M")."""
    plan: list = []
    for stage, (convs, mult) in enumerate(zip(VGG_STAGES[depth], (1, 2, 4, 8, 8))):
        plan += (["M"] if stage else []) + [mult * width] * convs
    return plan


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
    "full": {"data": {"name": "cifar10", "test_fraction": None}, "datasets": ["cifar10", "cifar100"],
             "needs_data_dir": True, "score_examples": None,
             "train": {"global_batch_size": 128, "optimizer": "sgd", "momentum": 0.9, "lr": 0.1, "weight_decay": 1e-4,
                       "schedule": "step", "milestones": [0.5, 0.75], "gamma": 0.1, "precision": "fp32",
                       "augment": {"pad": 4, "flip": True}},
             # open_lth's cifar_lenet default: Adam (torch defaults), lr 1e-3, no decay, no LR drops
             "arch_train": {"mlp": {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.0, "betas": [0.9, 0.999],
                                    "schedule": "constant"}},
             "evals_per_epoch": 1, "grand_epoch": [10, 20], "el2n_epoch": [10, 20], "grand_batch_size": 40,
             "pd_k": 30, "pd_targets": "labels",
             "pd_leave_one_out": False, "pd_stream": True, "threads": 0, "runs_per_arch": 5, "epochs": 160,
             "checkpoint_epochs": 10,
             "archs": {"mlp": "cifar-mlp-1024-512-128", "vgg": "cifar-vgg-16", "resnet": "cifar-resnet-20",
                       "resnet20_w8": {"arch": "resnet", "width": 8, "blocks": 3},
                       "resnet20_w32": {"arch": "resnet", "width": 32, "blocks": 3},
                       "resnet20_w64": {"arch": "resnet", "width": 64, "blocks": 3},
                       "resnet32": {"arch": "resnet", "width": 16, "blocks": 5},
                       "resnet50": {"arch": "resnet", "width": 16, "blocks": 8},
                       "vgg16_w16": {"arch": "vgg", "vgg_layers": _vgg(16, 16)},
                       "vgg16_w32": {"arch": "vgg", "vgg_layers": _vgg(16, 32)},
                       "vgg16_w128": {"arch": "vgg", "vgg_layers": _vgg(16, 128)},
                       "vgg11": {"arch": "vgg", "vgg_layers": _vgg(11, 64)},
                       "vgg13": {"arch": "vgg", "vgg_layers": _vgg(13, 64)},
                       "vgg19": {"arch": "vgg", "vgg_layers": _vgg(19, 64)}}},
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
