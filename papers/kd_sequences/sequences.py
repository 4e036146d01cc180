"""Knowledge distillation across sequences of training runs (Liu et al. 2022): the sequences, the
methods that train each later run, and the per-run cost accounting.

    spec = run.spec                                                     # a SequencesSpec
    train_set, test_set = load_image_data(spec.data, data_dir)
    results, info = run_sequences(spec, train_set, test_set, seed)      # one row per training, here

The notebook runs the same trainings as jobs (papers.kd_sequences.jobs.run_sequences_as_jobs: one
process per GPU, resumable); run_sequences is their in-process reference.

Run 0 of each sequence trains from scratch at the full budget. Every later run k trains once per
method (scratch, or distilling from the previous run's full-budget model of the same method on the
steps its KDSchedule picks) and per budget (a fraction of the full step count, each with its own
full LR schedule: cosine, or the step schedule's drops at the same fractions of its own steps).
Training goes through the shared vision pipeline.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from shared.data.images import ImageSet
from shared.models.vision import forward_flops
from shared.pipelines.vision_classification import (ClassifierTrainSpec, DistillationSpec, ImageDataSpec, KDSchedule,
                                                    build_classifier, check_model_spec, distillation_loss,
                                                    train_classifier)
from shared.utils.config import StrictConfig

# forward + backward of one example, in forward passes
TRAINING_FORWARDS = 3.0


@dataclass
class SequenceSpec(StrictConfig):
    """One sequence of related runs: `lrs` (a hyperparameter search: one learning rate per run, all
    the data) or `data_fractions` (retraining as data arrives: run k sees the first fraction k of
    the training set, in a fixed arrival order, at the train spec's lr)."""

    lrs: tuple[float, ...] | None = None
    data_fractions: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if (self.lrs is None) == (self.data_fractions is None):
            raise ValueError("a sequence gives either lrs or data_fractions")


@dataclass
class SequencesSpec(StrictConfig):
    """01_sequences. train.max_steps is the full budget; budget_fractions the budgets tried for every
    later run; strategies: name -> the KDSchedule of a teacher-cost-cutting method ("kd" = throughout).
    checkpoint_every: steps between the checkpoints of each training run as a job (0: none)."""

    data: ImageDataSpec
    model: Any
    train: ClassifierTrainSpec
    sequences: dict[str, SequenceSpec]
    strategies: dict[str, KDSchedule]
    distillation: DistillationSpec = field(default_factory=DistillationSpec)
    budget_fractions: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0)
    seeds: tuple[int, ...] = (0,)
    threads: int = 0
    needs_data_dir: bool = False
    label_noise: float = 0.0
    noise_seed: int = 0
    checkpoint_every: int = 0

    def __post_init__(self) -> None:
        check_model_spec(self.model)
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {self.checkpoint_every}")
        if self.train.max_steps is None:
            raise ValueError("train.max_steps (the full budget) must be set")
        if not 0.0 <= self.label_noise < 1.0:
            raise ValueError(f"label_noise must be in [0, 1), got {self.label_noise}")


def with_label_noise(data: ImageSet, fraction: float, seed: int = 0) -> ImageSet:
    """`data` with round(fraction * N) labels, chosen at random (`seed`), replaced by a different class
    drawn uniformly: symmetric label noise. x [N, C, H, W] unchanged; y [N] partly flipped."""
    if fraction == 0.0:
        return data
    gen = torch.Generator().manual_seed(seed)
    n, c = len(data), data.num_classes
    flip = torch.randperm(n, generator=gen)[: int(round(fraction * n))]
    y = data.y.clone()
    y[flip] = (y[flip] + torch.randint(1, c, (len(flip),), generator=gen)) % c     # never the true class
    return ImageSet(data.x, y, data.classes, data.indices, data.name)


def sequence_runs(spec: SequencesSpec, name: str, train_set: ImageSet) -> list[tuple[float, ImageSet]]:
    """(lr, training subset) of every run of sequence `name`."""
    seq = spec.sequences[name]
    if seq.lrs is not None:
        return [(lr, train_set) for lr in seq.lrs]
    order = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(0))   # arrival order
    return [(spec.train.lr, train_set.subset(order[: int(round(f * len(train_set)))].sort().values))
            for f in seq.data_fractions]


def budgets(spec: SequencesSpec) -> list[int]:
    """Step counts of the budgets: round(fraction * full budget), at least 1."""
    return [max(1, int(round(f * spec.train.max_steps))) for f in spec.budget_fractions]


def methods(spec: SequencesSpec) -> dict[str, KDSchedule | None]:
    """Every method of the later runs, in row order: "scratch" (no teacher), then spec.strategies."""
    return {"scratch": None, **spec.strategies}


def seed_base(seed: int, s: int) -> int:
    """Seed of run 0 of seed s of a sequence (run k: + k)."""
    return 10_000 * seed + 1_000 * s


def training_data(spec: SequencesSpec, train_set: ImageSet) -> tuple[ImageSet, int]:
    """The training set every run draws from (`spec.label_noise` symmetric noise, fixed by
    `spec.noise_seed`) and the model's forward FLOPs per example (teacher = student shape)."""
    train_set = with_label_noise(train_set, spec.label_noise, spec.noise_seed)
    return train_set, forward_flops(build_classifier(spec.model, train_set), train_set.shape)


def train_one(spec: SequencesSpec, lr: float, data: ImageSet, test_set: ImageSet, steps: int, run_seed: int,
              teacher: nn.Module | None, schedule: KDSchedule | None, flops: int,
              run_dir: str | Path | None = None) -> tuple[nn.Module, dict]:
    """Train one student (initialised from `run_seed`, the same for every method and budget of a run);
    returns the model and its row: steps, test_acc, student/teacher FLOPs, wall-clock seconds.
    run_dir: the trainer's folder (metrics.jsonl, a checkpoint every spec.checkpoint_every steps, resumed
    from the latest, the teacher's counts included); None trains without files."""
    torch.manual_seed(run_seed)
    model = build_classifier(spec.model, data)
    loss = distillation_loss([teacher] if teacher is not None else [], steps, spec.distillation, schedule)
    trainer = train_classifier(model, data, spec.train, seed=run_seed, max_steps=steps, lr=lr,
                               log_every=max(1, steps // 4), loss_fn=loss, eval_sets={"test": test_set},
                               run_dir=run_dir, checkpoint_every=spec.checkpoint_every if run_dir else 0)
    row = {"steps": steps, "test_acc": trainer.history.final("test/acc"),
           "student_flops": TRAINING_FORWARDS * flops * spec.train.global_batch_size * steps,
           "teacher_flops": float(flops) * loss.teacher_forward_examples,
           "teacher_forward_examples": loss.teacher_forward_examples,
           "wall_s": trainer.history.train[-1]["elapsed_s"], "teacher_s": loss.teacher_seconds}
    return model, row


def run_sequences(spec: SequencesSpec, train_set: ImageSet, test_set: ImageSet, seed: int = 0
                  ) -> tuple[pd.DataFrame, dict]:
    """Every training of every sequence, method, seed s (seeds 10_000 * seed + 1_000 * s + run) and
    budget. The training labels carry `spec.label_noise` symmetric noise (fixed by `spec.noise_seed`,
    the same for every run and seed); the test labels are clean. Returns the results (one row per
    training, total_flops = student + teacher) and {"budgets", "forward_flops_per_example",
    "seconds_total"}."""
    train_set, flops = training_data(spec, train_set)
    steps_grid = budgets(spec)
    rows = []
    started = time.time()
    for seq in spec.sequences:
        runs_spec = sequence_runs(spec, seq, train_set)
        for s in spec.seeds:
            base = seed_base(seed, s)
            lr0, data0 = runs_spec[0]
            first, row = train_one(spec, lr0, data0, test_set, spec.train.max_steps, base, None, None, flops)
            rows.append({"sequence": seq, "run": 0, "method": "scratch", "seed": s, "lr": lr0,
                         "train_examples": len(data0), **row})
            for method, schedule in methods(spec).items():
                teacher = first
                for k, (lr, data) in enumerate(runs_spec[1:], start=1):
                    for steps in steps_grid:
                        model, row = train_one(spec, lr, data, test_set, steps, base + k,
                                               None if schedule is None else teacher, schedule, flops)
                        rows.append({"sequence": seq, "run": k, "method": method, "seed": s, "lr": lr,
                                     "train_examples": len(data), **row})
                    if schedule is not None:
                        teacher = model            # the full-budget model of this run teaches the next run
        print(f"{seq}: done, {time.time() - started:.0f} s so far")
    return results_table(rows), {"budgets": steps_grid, "forward_flops_per_example": flops,
                                 "seconds_total": time.time() - started}


def results_table(rows: list[dict]) -> pd.DataFrame:
    """The trainings' rows as one table, with total_flops = student_flops + teacher_flops."""
    results = pd.DataFrame(rows)
    results["total_flops"] = results["student_flops"] + results["teacher_flops"]
    return results


def scratch_seed_spread(spec: SequencesSpec, train_set: ImageSet, test_set: ImageSet, seeds: list[int]
                        ) -> pd.DataFrame:
    """Calibration, run apart from the notebook: every later run of every sequence trained from scratch
    at the full budget for each seed in `seeds` (seeds 10_000 * seed + run, disjoint from the
    notebook's). Rows: sequence, run, acc_mean, acc_std (std over seeds of the test accuracy)."""
    train_set, flops = training_data(spec, train_set)
    rows = []
    for seq in spec.sequences:
        for k, (lr, data) in enumerate(sequence_runs(spec, seq, train_set)[1:], start=1):
            accs = [train_one(spec, lr, data, test_set, spec.train.max_steps, 10_000 * s + k, None, None, flops)[1]
                    ["test_acc"] for s in seeds]
            rows.append({"sequence": seq, "run": k, "acc_mean": float(np.mean(accs)),
                         "acc_std": float(np.std(accs, ddof=1))})
    return pd.DataFrame(rows)
