"""Prunability against data dimension (Ankner et al. 2022): the data sets of controlled dimension,
the IMP sweep over (architecture, dimension, seed) and its curves.

    datasets, checks = manifold_datasets(spec.data, spec.dims)          # generated manifolds
    datasets, checks = pca_datasets(spec.data, spec.dims, data_dir)     # real images, PCA-reduced
    curves = imp_curves(datasets, spec.archs, spec.train, spec.imp, spec.seeds, spec.tolerance, seed)
    fig = plot_curves(curves, "generated manifolds", "k")

imp_curves runs the IMP runs here, one after another; the 01 notebooks run the same runs as resumable jobs,
side by side on their GPUs (imp_jobs.imp_curves_as_jobs: the same table).

Each IMP run goes through the shared vision pipeline (`shared.pipelines.vision_classification`):
IMP with weight rewinding, every level trained by the shared trainer with the masks held. The full
presets set two lottery-ticket details (`SweepImpSpec`): retraining resumes at the rewind step, and
chosen architectures keep their output layer dense.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from shared.data.images import ImageSet, normalize
from shared.pipelines.vision_classification import (ClassifierTrainSpec, ImageDataSpec, ImpSpec, ModelSpec,
                                                    build_classifier, check_model_spec, load_image_data,
                                                    train_classifier)
from shared.train.classification import accuracy
from shared.train.pruning import IMPResult, ImpProgress, Masks, run_imp
from shared.utils.config import StrictConfig

from .manifolds import (ManifoldConfig, explained_variance, manifold_classification, mle_dimension, pca_project,
                        twonn_dimension)

Datasets = dict[int, tuple[ImageSet, ImageSet]]      # dimension k -> (train, test)


def prunability(sparsities: Sequence[float], accuracies: Sequence[float], dense_accuracy: float,
                tolerance: float) -> float:
    """The largest sparsity whose accuracy is at least `dense_accuracy - tolerance` (0.0 if none)."""
    ok = [s for s, a in zip(sparsities, accuracies) if a >= dense_accuracy - tolerance]
    return float(max(ok)) if ok else 0.0


def interpolated_prunability(sparsities: Sequence[float], accuracies: Sequence[float], dense_accuracy: float,
                             tolerance: float) -> float:
    """Prunability read between IMP levels: with l the last level whose accuracy is at least
    `dense_accuracy - tolerance`, the sparsity where the accuracy line from level l to level l + 1
    crosses that threshold, interpolated linearly in log(fraction of weights remaining). The sparsity
    of level l when l is the last level (censored); 0.0 when no level qualifies.
    sparsities, accuracies: [L + 1] per level, level 0 dense."""
    s, a = np.asarray(sparsities, float), np.asarray(accuracies, float)
    threshold = dense_accuracy - tolerance
    ok = np.flatnonzero(a >= threshold)
    if len(ok) == 0:
        return 0.0
    last = int(ok[-1])
    if last == len(a) - 1:
        return float(s[last])
    t = (a[last] - threshold) / (a[last] - a[last + 1])               # in (0, 1]: a[last + 1] < threshold
    log_remaining = np.log(1 - s[last]) + t * (np.log(1 - s[last + 1]) - np.log(1 - s[last]))
    return float(1 - np.exp(log_remaining))


# ---- data of controlled dimension ------------------------------------------------------------------

@dataclass
class ManifoldDataSpec(StrictConfig):
    """Generated manifolds (papers.prunability.manifolds): ambient dimension D, classes decided by
    `label_dims` latent coordinates (None: all k of them); n_train / n_test examples drawn with seeds
    train_seed / test_seed. hidden: width of the random embedding network, at least every k (a
    narrower one caps the data's dimension at its width)."""

    ambient_dim: int = 64
    num_classes: int = 4
    label_dims: int | None = None
    n_train: int = 2000
    n_test: int = 2000
    train_seed: int = 1
    test_seed: int = 2
    hidden: int = 128


def _manifold_sets(spec: ManifoldDataSpec, k: int) -> tuple[ImageSet, ImageSet]:
    mc = ManifoldConfig(intrinsic_dim=k, ambient_dim=spec.ambient_dim, num_classes=spec.num_classes,
                        label_dims=spec.label_dims, hidden=spec.hidden)
    return (manifold_classification(spec.n_train, mc, seed=spec.train_seed),
            manifold_classification(spec.n_test, mc, seed=spec.test_seed))


def _manifold_check(spec: ManifoldDataSpec, k: int, train: ImageSet) -> dict:
    flat = train.x.flatten(1).numpy()[:2000]                                      # [n, D]
    power = np.linalg.svd(flat - flat.mean(0), compute_uv=False) ** 2
    return {"dimension": k, "twonn": twonn_dimension(flat), "mle": mle_dimension(flat, k=20),
            "pca_components_for_90pct": int(np.searchsorted(np.cumsum(power) / power.sum(), 0.9) + 1),
            "class_balance_min": float(torch.bincount(train.y, minlength=spec.num_classes).min()) / len(train)}


def manifold_dataset(spec: ManifoldDataSpec, k: int) -> tuple[ImageSet, ImageSet]:
    """The normalized (train, test) on a k-dimensional manifold in R^D (as manifold_datasets makes it)."""
    return tuple(normalize(*_manifold_sets(spec, k)))


def manifold_datasets(spec: ManifoldDataSpec, dims: Sequence[int]) -> tuple[Datasets, pd.DataFrame]:
    """Per intrinsic dimension k: normalized (train, test) on a k-dimensional manifold in R^D, and a
    table of dimension checks (TwoNN, MLE, PCA components for 90% of the variance, class balance)."""
    datasets, checks = {}, []
    for k in dims:
        train, test = _manifold_sets(spec, k)
        checks.append(_manifold_check(spec, k, train))
        datasets[k] = tuple(normalize(train, test))
    return datasets, pd.DataFrame(checks)


def manifold_checks(spec: ManifoldDataSpec, dims: Sequence[int]) -> pd.DataFrame:
    """manifold_datasets' table of dimension checks alone (no data set kept)."""
    return pd.DataFrame([_manifold_check(spec, k, _manifold_sets(spec, k)[0]) for k in dims])


def pca_dataset(train_full: ImageSet, test_full: ImageSet, k: int) -> tuple[ImageSet, ImageSet]:
    """The images projected on the training set's top-k principal components and mapped back (k >= the
    pixel count: the images unchanged)."""
    return tuple(pca_project(train_full, test_full, k=k)) if k < int(np.prod(train_full.shape)) \
        else (train_full, test_full)


def pca_datasets(spec: ImageDataSpec, dims: Sequence[int], data_dir: str | Path | None = None,
                 keep: bool = True) -> tuple[Datasets, pd.DataFrame]:
    """Per k: the images projected on the training set's top-k principal components and mapped back
    (pca_dataset), and a table of checks (variance kept, TwoNN). keep=False: the checks alone ({})."""
    train_full, test_full = load_image_data(spec, data_dir)
    datasets, checks = {}, []
    for k in dims:
        train, test = pca_dataset(train_full, test_full, k)
        flat = train.x.flatten(1).numpy()[:2000]
        checks.append({"dimension": k, "variance_kept": explained_variance(train_full, k),
                       "twonn": twonn_dimension(flat)})
        if keep:
            datasets[k] = (train, test)
    return datasets, pd.DataFrame(checks)


# ---- the IMP sweep ---------------------------------------------------------------------------------

@dataclass
class SweepImpSpec(ImpSpec):
    """ImpSpec plus two lottery-ticket details (defaults: off, the smoke and small behaviour).

    continue_after_rewind: each level resumes training at `rewind_step` (the LR schedule and batch
    order of that step) and runs to the end, as rewinding does in Frankle et al. 2020 and open_lth;
    False retrains the whole schedule from the rewound weights.
    dense_head: architectures (keys of the sweep's archs) whose output layer is never pruned,
    whatever `include_head` says (open_lth's LeNet and VGG defaults ignore fc.weight).
    """

    continue_after_rewind: bool = False
    dense_head: tuple[str, ...] = ()


@dataclass
class ImpSweepSpec(StrictConfig):
    """What the 01 notebooks sweep: every architecture (a flavour name or VisionConfig fields) x data
    dimension x seed, one IMP run each. tolerance: prunability = the largest sparsity whose test
    accuracy is within `tolerance` of the dense network's. checkpoint_every: steps between the checkpoints
    of each IMP level's training when the runs go as jobs (imp_jobs; 0: none, a killed job redoes the level).
    """

    dims: tuple[int, ...]
    archs: dict[str, Any]
    train: ClassifierTrainSpec
    imp: SweepImpSpec
    seeds: tuple[int, ...] = (0,)
    tolerance: float = 0.01
    threads: int = 0
    needs_data_dir: bool = False
    checkpoint_every: int = 0

    def __post_init__(self) -> None:
        for model in self.archs.values():
            check_model_spec(model)
        if self.train.max_steps is None:
            raise ValueError("train.max_steps must be set (steps per IMP level)")
        unknown = sorted(set(self.imp.dense_head) - set(self.archs))
        if unknown:
            raise ValueError(f"imp.dense_head names {unknown}, not among archs {sorted(self.archs)}")
        if self.imp.continue_after_rewind and self.imp.rewind_step >= self.train.max_steps:
            raise ValueError("imp.rewind_step must be below train.max_steps to continue from it")
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {self.checkpoint_every}")


@dataclass
class ManifoldSweepSpec(ImpSweepSpec):
    """01_manifolds: the IMP sweep over generated manifolds of intrinsic dimension `dims`."""

    data: ManifoldDataSpec = field(default_factory=ManifoldDataSpec)


@dataclass
class ImageSweepSpec(ImpSweepSpec):
    """01_images: the IMP sweep over real images reduced to `dims` principal components."""

    data: ImageDataSpec = field(default_factory=ImageDataSpec)


def lottery_imp(model: torch.nn.Module, train_set: ImageSet, test_set: ImageSet, spec: ClassifierTrainSpec,
                imp: ImpSpec, seed: int, continue_after_rewind: bool, *, run_dir: str | Path | None = None,
                checkpoint_every: int = 0, callbacks: Callable[[list], list] | None = None,
                resume: ImpProgress | None = None, on_level_end: Callable[[ImpProgress], None] | None = None
                ) -> IMPResult:
    """IMP with rewinding (run_imp) as `train_with_imp` runs it, with the choice of how each level
    retrains: the whole schedule, or (with `continue_after_rewind`) from the rewind step to the end.
    Returns per level {"test_acc"}. run_dir / checkpoint_every: every level's trainer folder
    (train_classifier; a level resumes from its latest checkpoint there); callbacks: maps run_imp's
    callbacks of a level to the ones trained with; resume / on_level_end: run_imp's."""

    def fit(m: torch.nn.Module, masks: Masks, level_callbacks: list) -> dict:
        level_callbacks = level_callbacks if callbacks is None else callbacks(level_callbacks)
        train_classifier(m, train_set, spec, seed=seed, callbacks=level_callbacks, run_dir=run_dir,
                         checkpoint_every=checkpoint_every)
        return {"test_acc": accuracy(m, test_set)}

    return run_imp(model, fit, imp.levels, imp.fraction, rewind_step=imp.rewind_step,
                   include_head=imp.include_head, continue_from_rewind=continue_after_rewind, resume=resume,
                   on_level_end=on_level_end)


def arch_imp_spec(imp: ImpSpec, arch: str) -> ImpSpec:
    """The IMP spec of `arch`: `imp` with include_head=False when `arch` is in imp.dense_head."""
    return dataclasses.replace(imp, include_head=False) if arch in getattr(imp, "dense_head", ()) else imp


def run_seed(seed: int, arch_index: int, seed_index: int) -> int:
    """The seed of the IMP run of architecture `arch_index` with sweep seed `seed_index` (notebook seed `seed`)."""
    return 10_000 * seed + 1_000 * arch_index + 10 * seed_index + 1


def curve_rows(arch: str, dim: int, seed_index: int, result: IMPResult, tolerance: float) -> list[dict]:
    """One IMP run's rows of the curves table, one per level."""
    sparsities, accs = result.sparsity, [m["test_acc"] for m in result.metrics]
    p = interpolated_prunability(sparsities, accs, accs[0], tolerance)
    p_grid = prunability(sparsities, accs, accs[0], tolerance)
    return [{"arch": arch, "dimension": dim, "seed": seed_index, "level": level, "sparsity": sp, "test_acc": acc,
             "dense_acc": accs[0], "prunability": p, "prunability_grid": p_grid}
            for level, (sp, acc) in enumerate(zip(sparsities, accs))]


def imp_curves(datasets: Datasets, archs: dict[str, ModelSpec], train: ClassifierTrainSpec, imp: ImpSpec,
               seeds: Sequence[int], tolerance: float, seed: int = 0) -> pd.DataFrame:
    """One IMP run per (architecture a, dimension, seed s), here one after another, initialised and
    batched with run_seed(seed, a, s) = 10_000 * seed + 1_000 * a + 10 * s + 1. Rows: arch, dimension,
    seed, level, sparsity, test_acc, dense_acc, prunability (interpolated between levels),
    prunability_grid (the best level's). The notebooks run the same runs as jobs (imp_jobs)."""
    rows = []
    started = time.time()
    continue_after_rewind = getattr(imp, "continue_after_rewind", False)
    for a, (arch, model_spec) in enumerate(archs.items()):
        arch_imp = arch_imp_spec(imp, arch)
        for dim, (train_set, test_set) in datasets.items():
            for s in seeds:
                seed_r = run_seed(seed, a, s)
                torch.manual_seed(seed_r)
                model = build_classifier(model_spec, train_set)
                result = lottery_imp(model, train_set, test_set, train, arch_imp, seed_r, continue_after_rewind)
                rows += curve_rows(arch, dim, s, result, tolerance)
        print(f"{arch}: done, {time.time() - started:.0f} s so far")
    return pd.DataFrame(rows)


def plot_curves(curves: pd.DataFrame, title: str, dim_label: str) -> plt.Figure:
    """Test accuracy against the fraction of weights remaining, one panel per architecture, one
    line per dimension (mean ± std over seeds)."""
    archs = list(dict.fromkeys(curves["arch"]))
    fig, axes = plt.subplots(1, len(archs), figsize=(6.5 * len(archs), 4.2), squeeze=False)
    for ax, arch in zip(axes[0], archs):
        g = curves[curves["arch"] == arch]
        for dim, d in g.groupby("dimension"):
            m = d.groupby("sparsity")["test_acc"].agg(["mean", "std"]).reset_index()
            ax.errorbar(1 - m["sparsity"], m["mean"], yerr=m["std"], marker="o", capsize=2,
                        label=f"{dim_label} = {dim}")
        ax.set_xscale("log")
        ax.invert_xaxis()
        ax.set_xlabel("fraction of weights remaining")
        ax.set_ylabel("test accuracy (mean ± std over seeds)")
        ax.set_title(f"{title}: {arch}")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def prunability_table(curves: pd.DataFrame) -> dict:
    """{dimension: {arch: mean interpolated prunability over seeds}} (the metrics the 01 notebooks log)."""
    return curves.groupby(["arch", "dimension"])["prunability"].mean().unstack().to_dict()
