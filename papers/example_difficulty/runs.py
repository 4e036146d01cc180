"""Many training runs of several architectures, every difficulty score per example (Kwok et al. 2024).

    results = train_all_runs(spec, seed, data_dir, out_dir / "jobs", slots=nproc_per_node, nnodes=nnodes)
    for data_spec in spec.data_specs():                     # one data set, or several at full scale
        train_set, test_set = load_image_data(data_spec, data_dir)
        scored = scored_subset(train_set, spec.score_examples)
        save_scores(scores_file(out_dir, data_spec.name, spec.dataset_names), results[data_spec.name], scored,
                    with_images=True)
    scores = {name: read_scores(path) for name, path in scores_files(out_dir).items()}

Each run (train_one_run) trains through the shared vision pipeline with an ExampleRecorder callback
(logits of every scored example at regular evaluations, VoG, GraNd at the chosen epochs), then scores
the final model's layer representations (prediction depth). train_all_runs runs every run of every
architecture and data set as a job of shared.train.jobs (one process per GPU given, `slots` at once on
each of `nnodes` nodes;
a finished run is skipped on a rerun, an unfinished one resumes from its checkpoint of every
`checkpoint_epochs` epochs; with one slot they run in this process one after another); train_runs
runs them here, for tests.

Outputs of a run of one data set keep their plain names (scores.npz, tables/runs.csv, metrics as
they are); with several, each data set's outputs carry its name (scores_cifar100.npz, runs_cifar100)
and the metrics are keyed by data set (output_name, by_dataset).
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import torch

from shared.data.images import ImageSet, steps_per_epoch
from shared.models.vision import count_parameters
from shared.pipelines.vision_classification import (ClassifierTrainSpec, ImageDataSpec, build_classifier,
                                                    check_model_spec, limit_threads, load_image_data,
                                                    train_classifier)
from shared.train.classification import accuracy
from shared.train.jobs import Job, run_jobs
from shared.utils.config import StrictConfig
from shared.utils.io import write_json_atomic

from .difficulty import SCORE_NAMES, layer_representations, run_scores, score_names, streamed_prediction_depth
from .example_records import ExampleRecorder

PD_TARGETS = ("predictions", "labels")
T = TypeVar("T")


def _epochs(value: int | tuple[int, ...] | None) -> tuple[int, ...]:
    return () if value is None else (value,) if isinstance(value, int) else tuple(value)


@dataclass
class TrainRunsSpec(StrictConfig):
    """01_train_runs: `runs_per_arch` runs of every architecture (a flavour name or VisionConfig
    fields) for `epochs` epochs; `evals_per_epoch` recorded evaluations per epoch; prediction depth
    with k = `pd_k` neighbours. score_examples: record a fixed random subset of the training set of
    this size (None: all of it).

    datasets: the data sets trained and scored one after another, each `data` with its name
    replaced; data.name must be the first (None: data.name alone).
    grand_epoch: GraNd at the end of this epoch, or of each of several (ascending).
    el2n_epoch: EL2N from the evaluation at the end of this epoch, or of each of several (None:
    averaged over evaluations). Of several epochs, the first fills the "grand" / "el2n" score and
    each later one a column of its own ("grand_ep20"; difficulty.later_epoch_column).
    arch_train: per-architecture overrides of `train` fields (e.g. the MLP's own optimizer).
    grand_batch_size: examples per GraNd chunk (one parameter gradient each held in memory).
    pd_targets: the k-NN probes' labels and targets, "predictions" (the final model's; Baldock et
    al.) or "labels"; pd_leave_one_out: whether a point is left out of its own neighbours;
    pd_stream: one layer at a time on the model's device (the full training set's layers at once do
    not fit in memory).
    checkpoint_epochs: a run run as a job (train_all_runs) checkpoints every this many epochs and a restarted job
    resumes from its latest checkpoint (0: no checkpoints; a restart trains the run again)."""

    data: ImageDataSpec
    train: ClassifierTrainSpec
    archs: dict[str, Any]
    epochs: int
    runs_per_arch: int
    evals_per_epoch: int = 2
    grand_epoch: int | tuple[int, ...] = 1
    pd_k: int = 15
    score_examples: int | None = None
    threads: int = 0
    needs_data_dir: bool = False
    arch_train: dict[str, dict[str, Any]] = field(default_factory=dict)
    el2n_epoch: int | tuple[int, ...] | None = None
    grand_batch_size: int = 256
    pd_targets: str = "predictions"
    pd_leave_one_out: bool = True
    pd_stream: bool = False
    datasets: tuple[str, ...] | None = None
    checkpoint_epochs: int = 0

    def __post_init__(self) -> None:
        for model in self.archs.values():
            check_model_spec(model)
        if self.epochs < 1 or self.runs_per_arch < 1 or self.evals_per_epoch < 1:
            raise ValueError("epochs, runs_per_arch and evals_per_epoch must be >= 1")
        if self.checkpoint_epochs < 0:
            raise ValueError(f"checkpoint_epochs must be >= 0 (0: none), got {self.checkpoint_epochs}")
        unknown = sorted(set(self.arch_train) - set(self.archs))
        if unknown:
            raise ValueError(f"arch_train names {unknown}, which are not in archs {sorted(self.archs)}")
        for arch in self.arch_train:
            self.train_for(arch)
        if self.pd_targets not in PD_TARGETS:
            raise ValueError(f"pd_targets={self.pd_targets!r} is not valid; choose one of {list(PD_TARGETS)}")
        for name, epochs in (("grand_epoch", self.grand_epochs), ("el2n_epoch", self.el2n_epochs)):
            if any(not 1 <= e <= self.epochs for e in epochs):
                raise ValueError(f"{name} must be in [1, epochs={self.epochs}], got {list(epochs)}")
            if list(epochs) != sorted(set(epochs)):
                raise ValueError(f"{name} must list distinct epochs in ascending order, got {list(epochs)}")
        if not self.grand_epochs:
            raise ValueError("grand_epoch needs at least one epoch")
        if self.datasets is not None:
            if not self.datasets or len(set(self.datasets)) != len(self.datasets):
                raise ValueError(f"datasets must name distinct data sets, got {list(self.datasets)}")
            if self.datasets[0] != self.data.name:
                raise ValueError(f"data.name={self.data.name!r} must be the first of datasets "
                                 f"{list(self.datasets)} (data holds the fields every data set shares)")
            self.data_specs()

    @property
    def grand_epochs(self) -> tuple[int, ...]:
        """The epochs at whose end GraNd is taken, ascending."""
        return _epochs(self.grand_epoch)

    @property
    def el2n_epochs(self) -> tuple[int, ...]:
        """The epochs of the one-evaluation EL2N columns, ascending (empty: EL2N averaged over evaluations)."""
        return _epochs(self.el2n_epoch)

    @property
    def dataset_names(self) -> tuple[str, ...]:
        """The data sets, in the order they are trained."""
        return tuple(self.datasets) if self.datasets is not None else (self.data.name,)

    def data_specs(self) -> list[ImageDataSpec]:
        """`data` for each data set (its name replaced; ImageDataSpec checks the name)."""
        return [dataclasses.replace(self.data, name=name) for name in self.dataset_names]

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


def _check_el2n_epochs(spec: TrainRunsSpec, train_set: ImageSet) -> None:
    spe, every = schedule(spec, train_set)
    off_evaluation = [epoch for epoch in spec.el2n_epochs if epoch * spe % every]
    if off_evaluation:
        raise ValueError(f"el2n_epoch {off_evaluation}: the epoch's end is not a recorded evaluation ({spe} steps per "
                         f"epoch, an evaluation every {every}); take evals_per_epoch that divides {spe}")


def run_seed(seed: int, arch_index: int, run: int) -> int:
    """Run r of the a-th architecture: seed 1000 * seed + 100 * a + r (initialisation and batch order)."""
    return 1000 * seed + 100 * arch_index + run


def train_one_run(spec: TrainRunsSpec, arch: str, arch_index: int, run: int, train_set: ImageSet,
                  test_set: ImageSet, scored: ImageSet, seed: int = 0, run_dir: str | Path | None = None
                  ) -> tuple[dict[str, np.ndarray], dict[str, Any], int]:
    """Train run `run` of `arch` and score `scored`: ({score: [N]}, its runs.csv row, recorded evaluations).
    run_dir: the trainer's (metrics.jsonl, a checkpoint every spec.checkpoint_epochs epochs, resumed from the
    latest one) and the recorded logits' (LOGITS_STORE); None trains without files."""
    _check_el2n_epochs(spec, train_set)
    spe, every = schedule(spec, train_set)
    grand_steps = {epoch: epoch * spe for epoch in spec.grand_epochs}
    seed_r = run_seed(seed, arch_index, run)
    torch.manual_seed(seed_r)
    model = build_classifier(spec.archs[arch], train_set)
    recorder = ExampleRecorder(scored.x, scored.y, every=every, grand_at=tuple(grand_steps.values()),
                               grand_batch_size=spec.grand_batch_size,
                               store=None if run_dir is None else Path(run_dir) / LOGITS_STORE)
    t0 = time.time()
    trainer = train_classifier(model, train_set, spec.train_for(arch), seed=seed_r, max_steps=spec.epochs * spe,
                               log_every=spe, eval_sets={"test": test_set}, callbacks=[recorder], run_dir=run_dir,
                               checkpoint_every=spec.checkpoint_epochs * spe)
    logits = recorder.logits
    el2n_at = {epoch: recorder.steps.index(epoch * spe) for epoch in spec.el2n_epochs}
    if spec.pd_stream or spec.pd_targets != "predictions" or not spec.pd_leave_one_out:
        targets = logits[-1].argmax(-1) if spec.pd_targets == "predictions" else scored.y
        depths = streamed_prediction_depth(model, scored.x, targets, k=spec.pd_k, leave_one_out=spec.pd_leave_one_out)
        reps = None
        with torch.no_grad():
            layers = len(model.eval().intermediates(scored.x[:1].to(next(model.parameters()).device)))
    else:
        depths = None
        reps = layer_representations(model, scored.x)
        layers = len(reps)
    per_example = run_scores(logits, scored.y, vog=recorder.vog(), representations=reps, pd_k=spec.pd_k,
                             grand={epoch: recorder.grand[step] for epoch, step in grand_steps.items()},
                             el2n_at=el2n_at, prediction_depths=depths)
    row = {"arch": arch, "run": run, "seed": seed_r, "test_acc": trainer.history.final("test/acc"),
           "train_acc": accuracy(model, scored), "layers": layers, "seconds": time.time() - t0}
    return {name: np.asarray(per_example[name]) for name in score_names(spec.grand_epochs, spec.el2n_epochs)}, \
        row, len(recorder.steps)


def train_runs(spec: TrainRunsSpec, train_set: ImageSet, test_set: ImageSet, scored: ImageSet,
               seed: int = 0) -> RunsResult:
    """Every run of every architecture here, one after another (train_one_run; run_seed gives the seeds);
    every score of `scored` per run (papers.example_difficulty.difficulty.score_names: SCORE_NAMES, then GraNd
    and EL2N at their later epochs). The notebook runs the same runs as jobs (train_all_runs)."""
    _check_el2n_epochs(spec, train_set)
    outputs = [train_one_run(spec, arch, a, r, train_set, test_set, scored, seed)
               for a, arch in enumerate(spec.archs) for r in range(spec.runs_per_arch)]
    return _result(spec, outputs)


def _result(spec: TrainRunsSpec, outputs: Sequence[tuple[dict[str, np.ndarray], dict[str, Any], int]]) -> RunsResult:
    names = score_names(spec.grand_epochs, spec.el2n_epochs)
    runs = pd.DataFrame([row for _, row, _ in outputs])
    for arch, g in runs.groupby("arch", sort=False):
        print(f"{arch}: {len(g)} runs, mean test accuracy {g['test_acc'].mean():.3f}, {g['seconds'].sum():.0f} s")
    return RunsResult({name: np.stack([scores[name] for scores, _, _ in outputs]) for name in names}, runs,
                      outputs[-1][2])


# ---- the runs as jobs (shared.train.jobs): one process per GPU, resumable ----------------------------

JOB_ENTRY_POINT = "papers.example_difficulty.runs:train_run_job"
JOB_SCORES, JOB_ROW = "run_scores.npz", "run.json"
LOGITS_STORE = "logits.f32"        # the recorder's logits [T, N, C] while the run trains (example_records)


def run_job_config(spec: TrainRunsSpec, dataset: str, arch: str, run: int, seed: int,
                   data_dir: str | Path | None) -> dict[str, Any]:
    """One run's job config: the spec cut to this data set and architecture (so adding runs or architectures
    leaves the other runs' configs, and their finished jobs, as they are), its place and the seed."""
    one = dataclasses.replace(spec, data=dataclasses.replace(spec.data, name=dataset), datasets=None,
                              archs={arch: spec.archs[arch]}, runs_per_arch=1,
                              arch_train={k: v for k, v in spec.arch_train.items() if k == arch})
    return {"spec": one.to_dict(), "arch": arch, "arch_index": list(spec.archs).index(arch), "run": run,
            "seed": seed, "data_dir": None if data_dir is None else str(data_dir)}


def train_run_job(config: dict[str, Any], run_dir: str) -> None:
    """Job entry point (shared.train.jobs): train and score one run (train_one_run) of run_job_config's config;
    write its scores (run_scores.npz, each [N]) and row (run.json) to run_dir, then drop its checkpoints."""
    spec = TrainRunsSpec.from_dict(config["spec"])
    limit_threads(spec.threads)
    train_set, test_set = load_image_data(spec.data, config["data_dir"])
    scored = scored_subset(train_set, spec.score_examples)
    scores, row, evaluations = train_one_run(spec, config["arch"], config["arch_index"], config["run"], train_set,
                                             test_set, scored, config["seed"], run_dir=run_dir)
    np.savez(Path(run_dir) / JOB_SCORES, **scores)
    write_json_atomic(Path(run_dir) / JOB_ROW, {**row, "evaluations": evaluations})
    shutil.rmtree(Path(run_dir) / "checkpoints", ignore_errors=True)
    (Path(run_dir) / LOGITS_STORE).unlink(missing_ok=True)


def run_jobs_of(spec: TrainRunsSpec, seed: int, data_dir: str | Path | None, jobs_dir: str | Path) -> list[Job]:
    """Every run of every architecture on every data set as a job, in data set, architecture, run order; run r
    of architecture a on data set d in jobs_dir/<d>-<a>-run<r>."""
    return [Job(f"{dataset}/{arch}/{r}", JOB_ENTRY_POINT, run_job_config(spec, dataset, arch, r, seed, data_dir),
                Path(jobs_dir) / f"{dataset}-{arch}-run{r}")
            for dataset in spec.dataset_names for arch in spec.archs for r in range(spec.runs_per_arch)]


def train_all_runs(spec: TrainRunsSpec, seed: int, data_dir: str | Path | None, jobs_dir: str | Path,
                   slots: int = 1, nnodes: int = 1, in_process: bool | None = None) -> dict[str, RunsResult]:
    """Every run on every data set as jobs, `slots` at a time on each of `nnodes` nodes (shared.train.jobs.run_jobs:
    one GPU each; with one slot on one node here, one after another); the results by data set, as train_runs
    returns them."""
    jobs = run_jobs_of(spec, seed, data_dir, jobs_dir)
    run_jobs(jobs, slots=slots, nnodes=nnodes, in_process=in_process)
    results = {}
    for dataset in spec.dataset_names:
        outputs = []
        for job in jobs:
            if job.name.startswith(f"{dataset}/"):
                with np.load(job.run_dir / JOB_SCORES) as f:
                    scores = {k: f[k] for k in f.files}
                row = json.loads((job.run_dir / JOB_ROW).read_text())
                outputs.append((scores, {k: v for k, v in row.items() if k != "evaluations"}, row["evaluations"]))
        results[dataset] = _result(spec, outputs)
    return results


def save_scores(path: str | Path, result: RunsResult, scored: ImageSet, with_images: bool) -> Path:
    """Write scores.npz: arch [R], labels [N], example_index [N], images [N, C, H, W] (or empty) and
    every score as [R, N]; 02_analysis reads it."""
    np.savez_compressed(path, arch=result.runs["arch"].to_numpy().astype(str), labels=scored.y.numpy(),
                        example_index=scored.indices.numpy(), images=scored.x.numpy() if with_images else np.zeros(0),
                        **result.scores)
    return Path(path)


# ---- one data set or several: where each one's outputs go -----------------------------------------

SCORES_FILE_FIELDS = ("arch", "labels", "example_index", "images")


@dataclass
class ScoresFile:
    """One data set's scores.npz: arch [R], labels [N], example_index [N], images [N, C, H, W] (or
    empty), and scores: name -> [R, N] (SCORE_NAMES first, then the later-epoch columns)."""

    arch: np.ndarray
    labels: np.ndarray
    example_index: np.ndarray
    images: np.ndarray
    scores: dict[str, np.ndarray]

    @property
    def archs(self) -> list[str]:
        """The architectures in the order they were trained."""
        return list(dict.fromkeys(self.arch.tolist()))


def output_name(stem: str, dataset: str, datasets: Sequence[str]) -> str:
    """An output's name: `stem` in a run of one data set (as smoke and small scale write it),
    `stem_<dataset>` for each of several."""
    return stem if len(datasets) == 1 else f"{stem}_{dataset}"


def by_dataset(values: Mapping[str, T]) -> T | dict[str, T]:
    """A metric or claim value per data set as recorded: the value itself for one data set, else
    {data set: value}."""
    return next(iter(values.values())) if len(values) == 1 else dict(values)


def text_by_dataset(texts: Mapping[str, str]) -> str:
    """A note per data set as one text: the note itself for one data set, else "cifar10: ...; cifar100: ..."."""
    return next(iter(texts.values())) if len(texts) == 1 else "; ".join(f"{d}: {t}" for d, t in texts.items())


def scores_file(out_dir: str | Path, dataset: str, datasets: Sequence[str]) -> Path:
    """Where 01_train_runs writes `dataset`'s scores: scores.npz, or scores_<dataset>.npz of several."""
    return Path(out_dir) / f"{output_name('scores', dataset, datasets)}.npz"


def scores_files(scores_dir: str | Path) -> dict[str, Path]:
    """The scores files of one 01_train_runs run, by data set: {"": scores.npz} for a run of one data
    set, else {name: scores_<name>.npz} in name order."""
    scores_dir = Path(scores_dir)
    if (scores_dir / "scores.npz").exists():
        return {"": scores_dir / "scores.npz"}
    found = {p.stem.removeprefix("scores_"): p for p in sorted(scores_dir.glob("scores_*.npz"))}
    if not found:
        raise FileNotFoundError(f"no scores.npz or scores_<data set>.npz in {scores_dir}; run 01_train_runs first")
    return found


def read_scores(path: str | Path) -> ScoresFile:
    """A scores file that save_scores wrote."""
    with np.load(path, allow_pickle=False) as data:
        names = list(SCORE_NAMES) + [n for n in data.files if n not in SCORE_NAMES and n not in SCORES_FILE_FIELDS]
        return ScoresFile(**{k: data[k] for k in SCORES_FILE_FIELDS}, scores={n: data[n] for n in names})
