"""Preflight plans of the prunability notebooks (``python -m shared.preflight prunability``).

01_manifolds / 01_images: one IMP run per architecture x data dimension x seed, each ``levels`` + 1
trainings of ``max_steps`` (the dense one and one per pruning level). Every run is planned at the
full input (the manifolds' ambient space as a square one-channel image), the largest the sweep
feeds. 02_figures trains nothing.
"""
from __future__ import annotations

import math

from shared.preflight import DataRequirement, TrainingRunPlan, World
from shared.preflight.recipes import CIFAR10_TEST, image_shape, vision_plan


def plan(notebook: str, spec, world: World) -> list[TrainingRunPlan]:
    if notebook not in ("01_manifolds", "01_images"):
        return []
    if notebook == "01_manifolds":
        shape = (1, math.isqrt(spec.data.ambient_dim), spec.data.num_classes)
    else:
        shape = image_shape(spec.data)[:3]
    trainings = len(spec.dims) * len(spec.seeds) * (spec.imp.levels + 1)
    train = spec.train.to_dict()
    return [vision_plan(arch, model, shape, train, train["max_steps"], count=trainings,
                        note=f"{len(spec.dims)} dims x {len(spec.seeds)} seeds x {spec.imp.levels + 1} IMP levels")
            for arch, model in spec.archs.items()]


def requirements(notebook: str, spec) -> list[DataRequirement]:
    if notebook == "01_images" and spec.data.name == "cifar10":
        return [DataRequirement(CIFAR10_TEST, "file", "CIFAR-10 binary version")]
    return []
