"""Many training runs of several architectures, every difficulty score per example (Kwok et al. 2024).

    train_set, test_set = load_image_data(spec.data, data_dir)
    scored = scored_subset(train_set, spec.score_examples)
    result = train_runs(spec, train_set, test_set, scored, seed)
    save_scores(run.out_dir / "scores.npz", result, scored, with_images=True)

Each run trains through the shared vision pipeline with an ExampleRecorder callback (logits of
every scored example at regular evaluations, VoG, GraNd at one step), then scores the final model's
layer representations (prediction depth).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from shared.data.images import ImageSet, steps_per_epoch
from shared.models.vision import count_parameters
from shared.pipelines.vision_classification import (ClassifierTrainSpec, ImageDataSpec, build_classifier,
                                                    check_model_spec, train_classifier)
from shared.train.classification import accuracy
from shared.utils.config import StrictConfig

from .difficulty import SCORE_NAMES, layer_representations, run_scores
from .example_records import ExampleRecorder


@dataclass
class TrainRunsSpec(StrictConfig):
    """01_train_runs: `runs_per_arch` runs of every architecture (a flavour name or VisionConfig
    fields) for `epochs` epochs; `evals_per_epoch` recorded evaluations per epoch; GraNd at the end
    of epoch `grand_epoch`; prediction depth with k = `pd_k` neighbours. score_examples: record a
    fixed random subset of the training set of this size (None: all of it)."""

    data: ImageDataSpec
    train: ClassifierTrainSpec
    archs: dict[str, Any]
    epochs: int
    runs_per_arch: int
    evals_per_epoch: int = 2
    grand_epoch: int = 1
    pd_k: int = 15
    score_examples: int | None = None
    threads: int = 0
    needs_data_dir: bool = False

    def __post_init__(self) -> None:
        for model in self.archs.values():
            check_model_spec(model)
        if self.epochs < 1 or self.runs_per_arch < 1 or self.evals_per_epoch < 1:
            raise ValueError("epochs, runs_per_arch and evals_per_epoch must be >= 1")


@dataclass
class RunsResult:
    """scores: name -> [runs, examples]; runs: one row per run; evaluations_per_run: recorded evaluations."""

    scores: dict[str, np.ndarray]
    runs: pd.DataFrame
    evaluations_per_run: int


def scored_subset(train_set: ImageSet, score_examples: int | None) -> ImageSet:
    """A fixed random subset (seed 0, in index order) of `score_examples` training examples, or all."""
    if score_examples is not None and score_examples < len(train_set):
        pick = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(0))[:score_examples]
        return train_set.subset(pick.sort().values)
    return train_set


def schedule(spec: TrainRunsSpec, train_set: ImageSet) -> tuple[int, int]:
    """(steps per epoch, steps between recorded evaluations)."""
    spe = steps_per_epoch(train_set, spec.train.global_batch_size)
    return spe, max(1, spe // spec.evals_per_epoch)


def describe(spec: TrainRunsSpec, train_set: ImageSet, test_set: ImageSet, scored: ImageSet) -> str:
    """The data sizes, the evaluation schedule and each architecture's parameter count, as text."""
    spe, every = schedule(spec, train_set)
    lines = [f"{len(train_set)} training examples ({len(scored)} scored), {len(test_set)} test; "
             f"{spe} steps per epoch, an evaluation every {every} steps"]
    lines += [f"{name}: {count_parameters(build_classifier(model, train_set)):,} parameters"
              for name, model in spec.archs.items()]
    return "\n".join(lines)


def train_runs(spec: TrainRunsSpec, train_set: ImageSet, test_set: ImageSet, scored: ImageSet,
               seed: int = 0) -> RunsResult:
    """Run r of architecture a uses seed 1000 * seed + 100 * a + r for its initialisation and batch
    order; every score of `scored` per run (papers.example_difficulty.difficulty.SCORE_NAMES)."""
    spe, every = schedule(spec, train_set)
    grand_step = spec.grand_epoch * spe
    scores = {name: [] for name in SCORE_NAMES}
    rows = []
    evaluations = 0
    started = time.time()
    for a, (arch, model_spec) in enumerate(spec.archs.items()):
        for r in range(spec.runs_per_arch):
            run_seed = 1000 * seed + 100 * a + r
            torch.manual_seed(run_seed)
            model = build_classifier(model_spec, train_set)
            recorder = ExampleRecorder(scored.x, scored.y, every=every, grand_at=(grand_step,))
            t0 = time.time()
            trainer = train_classifier(model, train_set, spec.train, seed=run_seed, max_steps=spec.epochs * spe,
                                       log_every=spe, callbacks=[recorder], eval_sets={"test": test_set})
            reps = layer_representations(model, scored.x)
            per_example = run_scores(recorder.logits, scored.y, grand=recorder.grand[grand_step],
                                     vog=recorder.vog(), representations=reps, pd_k=spec.pd_k)
            for name in SCORE_NAMES:
                scores[name].append(per_example[name])
            evaluations = len(recorder.steps)
            rows.append({"arch": arch, "run": r, "seed": run_seed, "test_acc": trainer.history.final("test/acc"),
                         "train_acc": accuracy(model, scored), "layers": len(reps), "seconds": time.time() - t0})
        print(f"{arch}: {spec.runs_per_arch} runs, mean test accuracy "
              f"{np.mean([x['test_acc'] for x in rows if x['arch'] == arch]):.3f}, {time.time() - started:.0f} s so far")
    return RunsResult({name: np.stack(v) for name, v in scores.items()}, pd.DataFrame(rows), evaluations)


def save_scores(path: str | Path, result: RunsResult, scored: ImageSet, with_images: bool) -> Path:
    """Write scores.npz: arch [R], labels [N], example_index [N], images [N, C, H, W] (or empty) and
    every score as [R, N]; 02_analysis reads it."""
    np.savez_compressed(path, arch=result.runs["arch"].to_numpy().astype(str), labels=scored.y.numpy(),
                        example_index=scored.indices.numpy(), images=scored.x.numpy() if with_images else np.zeros(0),
                        **result.scores)
    return Path(path)
