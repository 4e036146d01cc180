"""Preflight plans of the example_difficulty notebooks (``python -m shared.preflight example_difficulty``).

01_train_runs: ``runs_per_arch`` runs of every architecture for ``epochs`` epochs of the training
set (one line per architecture, ``count`` runs). 02_analysis trains nothing.
"""
from __future__ import annotations

import math

from shared.preflight import DataRequirement, TrainingRunPlan, World
from shared.preflight.recipes import CIFAR10_TEST, CIFAR100_TEST, image_shape, vision_plan


def plan(notebook: str, spec, world: World) -> list[TrainingRunPlan]:
    if notebook != "01_train_runs":
        return []
    channels, side, classes, examples = image_shape(spec.data)
    steps = spec.epochs * math.ceil(examples / spec.train.global_batch_size)
    return [vision_plan(arch, model, (channels, side, classes), spec.train_for(arch).to_dict(), steps,
                        count=spec.runs_per_arch, note=f"{spec.epochs} epochs of {examples} examples")
            for arch, model in spec.archs.items()]


def requirements(notebook: str, spec) -> list[DataRequirement]:
    """CIFAR-10 or CIFAR-100 (the binary versions) under data_dir at full scale."""
    if notebook == "01_train_runs" and spec.data.name == "cifar10":
        return [DataRequirement(CIFAR10_TEST, "file", "CIFAR-10 binary version")]
    if notebook == "01_train_runs" and spec.data.name == "cifar100":
        return [DataRequirement(CIFAR100_TEST, "file", "CIFAR-100 binary version")]
    return []
