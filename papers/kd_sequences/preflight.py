"""Preflight plans of the kd_sequences notebooks (``python -m shared.preflight kd_sequences``).

01_sequences (jobs.run_sequences_as_jobs, the trainings of sequences.run_sequences as jobs): per
sequence and seed, the first run at the full budget (one job each), then every later run of the
sequence with every method (scratch and each KD strategy) at every budget (one job per sequence, seed
and method: its chain of later runs); one line per (sequence, budget). The teacher's forwards (at most
one per student example, the same network) add at most a third to a distilled run's FLOPs and are not
counted.
02_figures trains nothing.
"""
from __future__ import annotations

from papers.kd_sequences.sequences import budgets
from shared.preflight import DataRequirement, TrainingRunPlan, World
from shared.preflight.recipes import CIFAR10_TEST, image_shape, vision_plan


def plan(notebook: str, spec, world: World) -> list[TrainingRunPlan]:
    if notebook != "01_sequences":
        return []
    shape = image_shape(spec.data)[:3]
    train = spec.train.to_dict()
    seeds, methods = len(spec.seeds), 1 + len(spec.strategies)
    plans = []
    for name, sequence in spec.sequences.items():
        runs = len(sequence.lrs or sequence.data_fractions)
        plans.append(vision_plan(f"{name} first run", spec.model, shape, train, spec.train.max_steps, count=seeds))
        for steps in budgets(spec):
            plans.append(vision_plan(f"{name} budget {steps}", spec.model, shape, train, steps,
                                     count=seeds * methods * (runs - 1),
                                     note=f"{seeds} seeds x {methods} methods x {runs - 1} later runs"))
    return plans


def requirements(notebook: str, spec) -> list[DataRequirement]:
    if notebook == "01_sequences" and spec.data.name == "cifar10":
        return [DataRequirement(CIFAR10_TEST, "file", "CIFAR-10 binary version")]
    return []
