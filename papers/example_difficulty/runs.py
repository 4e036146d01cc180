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

import dataclasses
import time
from dataclasses import dataclass, field
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

from .difficulty import SCORE_NAMES, layer_representations, run_scores, streamed_prediction_depth
from .example_records import ExampleRecorder

PD_TARGETS = ("predictions", "labels")


@dataclass
class TrainRunsSpec(StrictConfig):
    """01_train_runs: `runs_per_arch` runs of every architecture (a flavour name or VisionConfig
    fields) for `epochs` epochs; `evals_per_epoch` recorded evaluations per epoch; GraNd at the end
    of epoch `grand_epoch`; prediction depth with k = `pd_k` neighbours. score_examples: record a
    fixed random subset of the training set of this size (None: all of it).

    arch_train: per-architecture overrides of `train` fields (e.g. the MLP's own optimizer).
    el2n_epoch: EL2N from the evaluation at the end of this epoch (None: averaged over evaluations).
    grand_batch_size: examples per GraNd chunk (one parameter gradient each held in memory).
    pd_targets: the k-NN probes' labels and targets, "predictions" (the final model's; Baldock et
    al.) or "labels"; pd_leave_one_out: whether a point is left out of its own neighbours;
    pd_stream: one layer at a time on the model's device (the full training set's layers at once do
    not fit in memory)."""

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
    arch_train: dict[str, dict[str, Any]] = field(default_factory=dict)
    el2n_epoch: int | None = None
    grand_batch_size: int = 256
    pd_targets: str = "predictions"
    pd_leave_one_out: bool = True
    pd_stream: bool = False

    def __post_init__(self) -> None:
        for model in self.archs.values():
            check_model_spec(model)
        if self.epochs < 1 or self.runs_per_arch < 1 or self.evals_per_epoch < 1:
            raise ValueError("epochs, runs_per_arch and evals_per_epoch must be >= 1")
        unknown = sorted(set(self.arch_train) - set(self.archs))
        if unknown:
            raise ValueError(f"arch_train names {unknown}, which are not in archs {sorted(self.archs)}")
        for arch in self.arch_train:
            self.train_for(arch)
        if self.pd_targets not in PD_TARGETS:
            raise ValueError(f"pd_targets={self.pd_targets!r} is not valid; choose one of {list(PD_TARGETS)}")
        if self.el2n_epoch is not None and not 1 <= self.el2n_epoch <= self.epochs:
            raise ValueError(f"el2n_epoch must be in [1, epochs={self.epochs}], got {self.el2n_epoch}")

    def train_for(self, arch: str) -> ClassifierTrainSpec:
        """`train` with the architecture's overrides from arch_train applied."""
        if arch not in self.arch_train:
            return self.train
        return ClassifierTrainSpec.from_dict({**dataclasses.asdict(self.train), **self.arch_train[arch]})


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
            recorder = ExampleRecorder(scored.x, scored.y, every=every, grand_at=(grand_step,),
                                       grand_batch_size=spec.grand_batch_size)
            t0 = time.time()
            trainer = train_classifier(model, train_set, spec.train_for(arch), seed=run_seed,
                                       max_steps=spec.epochs * spe, log_every=spe, callbacks=[recorder],
                                       eval_sets={"test": test_set})
            logits = recorder.logits
            el2n_at = None if spec.el2n_epoch is None else recorder.steps.index(spec.el2n_epoch * spe)
            if spec.pd_stream or spec.pd_targets != "predictions" or not spec.pd_leave_one_out:
                targets = logits[-1].argmax(-1) if spec.pd_targets == "predictions" else scored.y
                depths = streamed_prediction_depth(model, scored.x, targets, k=spec.pd_k,
                                                   leave_one_out=spec.pd_leave_one_out)
                reps = None
                with torch.no_grad():
                    layers = len(model.eval().intermediates(scored.x[:1].to(next(model.parameters()).device)))
            else:
                depths = None
                reps = layer_representations(model, scored.x)
                layers = len(reps)
            per_example = run_scores(logits, scored.y, grand=recorder.grand[grand_step], vog=recorder.vog(),
                                     representations=reps, pd_k=spec.pd_k, el2n_at=el2n_at,
                                     prediction_depths=depths)
            for name in SCORE_NAMES:
                scores[name].append(per_example[name])
            evaluations = len(recorder.steps)
            rows.append({"arch": arch, "run": r, "seed": run_seed, "test_acc": trainer.history.final("test/acc"),
                         "train_acc": accuracy(model, scored), "layers": layers, "seconds": time.time() - t0})
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
