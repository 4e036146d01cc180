"""Typed presets of every kd_sequences notebook, every scale (plain literals; `overrides` change keys).

smoke: a 2-core CPU. Digits (stratified 70/30 split, 30% of the training labels flipped), an MLP 128-64,
       AdamW, a full budget of 240 steps of
       32 examples, budgets 1/8 to 1 of it, two sequences of four runs, 2 seeds.
small: one GPU: the same with 600 steps and 5 seeds.
full:  CIFAR-10 from data_dir, ResNet-20 with open_lth's ResNet-20 recipe (facebookresearch/open_lth
       models/cifar_resnet.py: SGD 0.1, momentum 0.9, wd 1e-4, batch 128, LR / 10 at 50% and 75% of
       the steps, 160 epochs = 62,560 steps of 391; pad-4 crops and flips). The paper's own models,
       schedules, temperature and alpha were not found (its full text is in no source we could reach),
       so these are that recipe's values and our choices, each marked in the README's recipe card.
"""
from __future__ import annotations

from dataclasses import dataclass

from shared.experiment.presets import NotebookPresets
from shared.utils.config import StrictConfig

from .sequences import SequencesSpec

STRATEGIES = {"kd": {"stop_fraction": 1.0, "every": 1},           # full distillation
              "kd_early": {"stop_fraction": 0.2, "every": 1},     # distil for the first 20% of steps only
              "kd_sparse": {"stop_fraction": 1.0, "every": 10}}   # teacher on one step in ten
DIGITS_TRAIN = {"global_batch_size": 32, "optimizer": "adamw", "lr": 2e-3, "weight_decay": 5e-4, "augment": None}
DIGITS = {"data": {"name": "digits", "test_fraction": 0.3, "split_seed": 0},
          "model": {"arch": "mlp", "hidden": [128, 64]},
          "distillation": {"temperature": 4.0, "alpha": 0.5},
          "budget_fractions": [0.125, 0.25, 0.5, 1.0], "strategies": STRATEGIES, "threads": 1,
          # 30% of the training labels replaced by another class (fixed draw; test labels clean): a teacher
          # trained for the full budget has averaged much of the noise out, a short student run has not
          "label_noise": 0.3, "noise_seed": 0, "checkpoint_every": 0,
          # new_data runs at train.lr
          "sequences": {"hparam_search": {"lrs": [2e-3, 1e-3, 4e-3, 5e-4]},
                        "new_data": {"data_fractions": [0.4, 0.6, 0.8, 1.0]}}}

SEQUENCES = {
    "smoke": {**DIGITS, "train": {**DIGITS_TRAIN, "max_steps": 240}, "seeds": [0, 1]},
    "small": {**DIGITS, "train": {**DIGITS_TRAIN, "max_steps": 600}, "seeds": [0, 1, 2, 3, 4], "threads": 0},
    "full": {**DIGITS, "data": {"name": "cifar10", "test_fraction": None}, "needs_data_dir": True, "label_noise": 0.0,
             "model": "cifar-resnet-20",
             "train": {"max_steps": 62_560, "global_batch_size": 128, "optimizer": "sgd", "momentum": 0.9, "lr": 0.1,
                       "weight_decay": 1e-4, "schedule": "step", "milestones": [0.5, 0.75], "gamma": 0.1,
                       "precision": "fp32", "augment": {"pad": 4, "flip": True}},
             "distillation": {"temperature": 4.0, "alpha": 0.5},
             "seeds": [0, 1, 2], "threads": 0,
             # ours: a checkpoint of each training as a job every epoch (391 steps of 128), so a preempted
             # job loses at most one epoch
             "checkpoint_every": 391,
             "sequences": {"hparam_search": {"lrs": [0.1, 0.05, 0.2, 0.025]},
                           "new_data": {"data_fractions": [0.4, 0.6, 0.8, 1.0]}}},
}


@dataclass
class FiguresSpec(StrictConfig):
    """02_figures. results_dir: 01_sequences' out_dir (None: its sibling folder). accuracy_tolerance:
    how far below full KD's accuracy a strategy may land. overhead_cut_range: the paper's 80-90%."""

    results_dir: str | None = None
    accuracy_tolerance: float = 0.01
    overhead_cut_range: tuple[float, float] = (0.8, 0.9)


FIGURES_BASE = {"results_dir": None, "accuracy_tolerance": 0.01, "overhead_cut_range": [0.8, 0.9]}
# smoke: 2 x the std over seeds (0.0078, mean over the six later runs) of scratch's full-budget accuracy,
# measured in a calibration run apart from the notebook (sequences.scratch_seed_spread, seeds 100-104);
# small and full: not calibrated yet, the 1 point of the earlier design.
FIGURES = {"smoke": {**FIGURES_BASE, "accuracy_tolerance": 0.016}, "small": FIGURES_BASE, "full": FIGURES_BASE}

NOTEBOOKS: dict[str, NotebookPresets] = {
    "01_sequences": NotebookPresets(SequencesSpec, SEQUENCES),
    "02_figures": NotebookPresets(FiguresSpec, FIGURES),
}
