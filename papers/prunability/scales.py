"""Typed presets of every prunability notebook, every scale (plain literals; `overrides` change keys).

smoke: a 2-core CPU. Generated manifolds in R^64 (labels from all latent coordinates) and PCA-reduced
       digits (8x8), MLP 64-64 (LeNet only at small and full scale), 100 AdamW steps per IMP level, 20%
       pruned per level for 14 levels (up to 95.6% sparsity; prunability interpolated between levels), 3 seeds.
small: one GPU, < 1 hour: more dimensions, wider models, 20% per level for 20 levels, 5 seeds.
full:  lottery-ticket scale (open_lth's recipes, README ## Recipe): 20% per level for 20 levels (98.8%
       sparsity), retraining from the rewind step to the end, output layers of the MLPs dense; generated
       manifolds in R^1024 with the LeNet recipe, grayscale CIFAR-10 (1,024 pixels) from data_dir with the
       ResNet-20 recipe. The paper's own setup was not found (README): the choice of recipes is ours.
"""
from __future__ import annotations

from dataclasses import dataclass

from shared.experiment.presets import NotebookPresets
from shared.utils.config import StrictConfig

from .imp import ImageSweepSpec, ManifoldSweepSpec

IMP = {"fraction": 0.2, "levels": 14, "rewind_step": 0}
TRAIN = {"max_steps": 100, "global_batch_size": 128, "lr": 3e-3, "optimizer": "adamw", "weight_decay": 0.0,
         "augment": None}
SMALL_IMP = {**IMP, "levels": 20}
FULL_TRAIN_SGD = {"global_batch_size": 128, "optimizer": "sgd", "momentum": 0.9, "weight_decay": 1e-4,
                  "augment": None}
SMOKE_ARCHS = {"mlp": {"arch": "mlp", "hidden": [64, 64]}}     # 3 seeds x 15 trainings leave no budget for LeNet
SMALL_ARCHS = {"mlp": {"arch": "mlp", "hidden": [128, 128]},
               "lenet": {"arch": "lenet", "channels": [8, 16], "hidden": [64]}}
MANIFOLD_DATA = {"ambient_dim": 64, "num_classes": 4, "label_dims": None,     # labels read all k coordinates
                  "n_train": 2000, "n_test": 2000,
                 "train_seed": 1, "test_seed": 2}
DIGITS = {"name": "digits", "test_fraction": 0.3, "split_seed": 0}

MANIFOLDS = {
    "smoke": {"data": MANIFOLD_DATA, "dims": [2, 4, 8, 16, 32], "seeds": [0, 1, 2], "archs": SMOKE_ARCHS, "train": TRAIN,
              "imp": IMP, "tolerance": 0.01, "threads": 1},
    "small": {"data": {**MANIFOLD_DATA, "n_train": 10000, "n_test": 5000}, "dims": [2, 4, 8, 12, 16, 24, 32, 48],
              "seeds": [0, 1, 2, 3, 4], "threads": 0, "archs": SMALL_ARCHS, "train": {**TRAIN, "max_steps": 1000},
              "imp": SMALL_IMP, "tolerance": 0.01},
    # Lottery-ticket scale: open_lth's mnist_lenet_300_100 recipe (README ## Recipe) on 32x32 manifold "images".
    "full": {"data": {**MANIFOLD_DATA, "ambient_dim": 1024, "num_classes": 10, "n_train": 50000, "n_test": 10000,
                      "hidden": 1024},                  # the embedding net at least as wide as the largest k
             "dims": [2, 4, 8, 16, 32, 64, 128, 256], "seeds": [0, 1, 2, 3, 4], "threads": 0,
             "archs": {"mlp": {"arch": "mlp", "hidden": [300, 100]},
                       "lenet": {"arch": "lenet", "channels": [32, 64], "hidden": [256]}},
             "train": {"global_batch_size": 128, "optimizer": "sgd", "momentum": 0.0, "weight_decay": 0.0,
                       "augment": None, "lr": 0.1, "schedule": "constant", "max_steps": 15640,   # 40 epochs
                       "precision": "fp32"},
             "imp": {**SMALL_IMP, "rewind_step": 0, "continue_after_rewind": True, "dense_head": ["mlp", "lenet"]},
             "tolerance": 0.01, "checkpoint_every": 391},     # ours: about one epoch (50,000 / 128)
}

IMAGES = {
    "smoke": {"data": DIGITS, "dims": [2, 4, 16, 64], "seeds": [0, 1, 2], "archs": SMOKE_ARCHS, "train": TRAIN, "imp": IMP,
              "tolerance": 0.01, "threads": 1},
    "small": {"data": DIGITS, "dims": [2, 4, 6, 8, 12, 16, 24, 32, 64], "seeds": [0, 1, 2, 3, 4], "threads": 0,
              "archs": SMALL_ARCHS, "train": {**TRAIN, "max_steps": 600}, "imp": SMALL_IMP, "tolerance": 0.01},
    # Grayscale CIFAR-10 with open_lth's cifar_resnet_20 recipe: SGD 0.1, momentum 0.9, wd 1e-4, batch 128,
    # 160 epochs, 10x drops at epochs 80 and 120 (README ## Recipe).
    "full": {"data": {"name": "cifar10", "test_fraction": None, "grayscale": True}, "needs_data_dir": True,
             "dims": [8, 16, 32, 64, 128, 256, 1024], "seeds": [0, 1, 2], "threads": 0,
             "archs": {"mlp": "cifar-mlp-1024-512-128", "resnet": "cifar-resnet-20"},
             "train": {**FULL_TRAIN_SGD, "max_steps": 62560, "lr": 0.1, "precision": "fp32",   # 160 x 391 steps
                       "schedule": "step", "milestones": [0.5, 0.75], "gamma": 0.1},        # x0.1 at epochs 80, 120
             "imp": {**SMALL_IMP, "rewind_step": 2000, "continue_after_rewind": True, "include_head": True,
                     "dense_head": ["mlp"]},
             "tolerance": 0.01, "checkpoint_every": 391},     # ours: one epoch of CIFAR-10 (50,000 / 128)
}


@dataclass
class FiguresSpec(StrictConfig):
    """02_figures: where the 01 notebooks' results are (None: beside this run's out_dir)."""

    runs_dir: str | None = None


FIGURES = {"smoke": {"runs_dir": None}, "small": {"runs_dir": None}, "full": {"runs_dir": None}}

NOTEBOOKS: dict[str, NotebookPresets] = {
    "01_manifolds": NotebookPresets(ManifoldSweepSpec, MANIFOLDS),
    "01_images": NotebookPresets(ImageSweepSpec, IMAGES),
    "02_figures": NotebookPresets(FiguresSpec, FIGURES),
}
