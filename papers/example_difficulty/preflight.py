"""Preflight plans of the example_difficulty notebooks (``python -m shared.preflight example_difficulty``).

01_train_runs: ``runs_per_arch`` runs of every architecture for ``epochs`` epochs of the training
set, on each data set in turn (one line per architecture and data set, ``count`` runs; the line is
named ``<data set>/<arch>`` when there are several data sets). 02_analysis trains nothing.
"""
from __future__ import annotations

import math

from shared.preflight import DataRequirement, TrainingRunPlan, World
from shared.preflight.recipes import CIFAR10_TEST, CIFAR100_TEST, image_shape, vision_plan

# the file under data_dir that shows each data set's binary version is there
DATA_FILES = {"cifar10": (CIFAR10_TEST, "CIFAR-10 binary version"),
              "cifar100": (CIFAR100_TEST, "CIFAR-100 binary version")}


def plan(notebook: str, spec, world: World) -> list[TrainingRunPlan]:
    if notebook != "01_train_runs":
        return []
    data_specs = spec.data_specs()
    plans = []
    for data in data_specs:
        channels, side, classes, examples = image_shape(data)
        steps = spec.epochs * math.ceil(examples / spec.train.global_batch_size)
        prefix = f"{data.name}/" if len(data_specs) > 1 else ""
        plans += [vision_plan(prefix + arch, model, (channels, side, classes), spec.train_for(arch).to_dict(), steps,
                              count=spec.runs_per_arch, note=f"{spec.epochs} epochs of {examples} {data.name} examples")
                  for arch, model in spec.archs.items()]
    return plans


def requirements(notebook: str, spec) -> list[DataRequirement]:
    """CIFAR-10 and / or CIFAR-100 (the binary versions) under data_dir at full scale."""
    if notebook != "01_train_runs":
        return []
    return [DataRequirement(path, "file", what) for path, what in
            (DATA_FILES[data.name] for data in spec.data_specs() if data.name in DATA_FILES)]
