"""One image-classification pipeline for the vision papers (example difficulty, KD sequences,
prunability): typed specs of the dataset, the model, the optimizer and schedule, and one-call
training over the shared Trainer (`shared.train.classification.fit_classifier`), with the callbacks
the papers add: iterative magnitude pruning with rewinding, distillation, per-example records.

    data = ImageDataSpec.from_dict({"name": "digits", "test_fraction": 0.3})
    train_set, test_set = load_image_data(data)                      # ImageSet [N, C, H, W], normalized
    model = build_classifier("cifar-resnet-20", train_set)           # a flavour, or VisionConfig fields
    spec = ClassifierTrainSpec.from_dict({"max_steps": 300, "global_batch_size": 64, "lr": 3e-3})
    trainer = train_classifier(model, train_set, spec, seed=0, eval_sets={"test": test_set},
                               callbacks=[recorder])                 # any trainer callback
    imp = train_with_imp(model, train_set, test_set, spec, ImpSpec(levels=3), seed=0)
    loss = distillation_loss([teacher], max_steps=300, spec=DistillationSpec(), schedule=KDSchedule())

A model is named by a flavour of `shared.models.flavours` (e.g. "cifar-resnet-20") or given as a
dict of `VisionConfig` fields; either way the input shape and the number of classes come from the
data. Paper-specific drivers (the IMP sweep over data dimensions, the distillation run sequences,
the per-example difficulty runs) live in `papers/<name>/`.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from shared.data.images import (ImageSet, generated_shapes, load_cifar10, load_cifar100, load_digits, normalize,
                                stratified_split, to_grayscale)
from shared.models.flavours import flavour, resolve_model_config
from shared.models.vision import VisionConfig, build_vision_model
from shared.train.classification import accuracy, fit_classifier, sgd_factory
from shared.train.config import TrainConfig
from shared.train.distillation import DistillationLoss, KDSchedule
from shared.train.pruning import IMPResult, Masks, run_imp
from shared.train.trainer import Trainer
from shared.utils.config import StrictConfig, from_dict

DATASETS = ("digits", "cifar10", "cifar100", "shapes")
OWN_TEST_SPLIT = ("cifar10", "cifar100")         # data sets with a test split of their own
OPTIMIZERS = ("adamw", "sgd")
STEP_SCHEDULE = "step"     # ClassifierTrainSpec's milestone schedule (the trainer's own are in TrainConfig)
# VisionConfig fields that come from the data, never from a model spec
DATA_SHAPE_FIELDS = ("in_channels", "image_size", "num_classes")


# ---- dataset ---------------------------------------------------------------------------------------

@dataclass
class ImageDataSpec(StrictConfig):
    """Which images: "digits" (scikit-learn's 8x8 digits), "shapes" (generated, seeded), "cifar10" or
    "cifar100" (the binary versions, from data_dir; CIFAR-100 with its 100 fine labels).

    test_fraction: digits and shapes are split (stratified, seeded by split_seed) into train and test;
    CIFAR-10 and CIFAR-100 have their own test splits (leave None). grayscale: average the colour channels.
    normalize: standardize with the training set's per-channel mean and std.
    n_examples, image_size: the generated shapes' count and side.
    """

    name: str = "digits"
    test_fraction: float | None = 0.3
    split_seed: int = 0
    grayscale: bool = False
    normalize: bool = True
    n_examples: int = 2000
    image_size: int = 16

    def __post_init__(self) -> None:
        if self.name not in DATASETS:
            raise ValueError(f"dataset name={self.name!r} is not valid; choose one of {list(DATASETS)}")
        if self.name not in OWN_TEST_SPLIT and self.test_fraction is None:
            raise ValueError(f"dataset {self.name!r} needs test_fraction (it has no test split of its own)")


def load_image_data(spec: ImageDataSpec, data_dir: str | Path | None = None) -> tuple[ImageSet, ImageSet]:
    """(train, test) ImageSets [N, C, H, W] as `spec` describes; CIFAR-10 is read from `data_dir`."""
    if spec.name == "digits":
        train, test = stratified_split(load_digits(), spec.test_fraction, seed=spec.split_seed)
    elif spec.name == "shapes":
        shapes = generated_shapes(spec.n_examples, spec.image_size, seed=spec.split_seed)
        train, test = stratified_split(shapes, spec.test_fraction, seed=spec.split_seed)
    else:
        if data_dir is None:
            raise ValueError(f"dataset {spec.name!r} needs data_dir (where its binary version is extracted)")
        load = load_cifar10 if spec.name == "cifar10" else load_cifar100
        train, test = load(data_dir, "train"), load(data_dir, "test")
    if spec.grayscale:
        train, test = to_grayscale(train), to_grayscale(test)
    if spec.normalize:
        train, test = normalize(train, test)
    return train, test


# ---- model -----------------------------------------------------------------------------------------

ModelSpec = str | Mapping[str, Any]


def check_model_spec(model: ModelSpec) -> None:
    """Raise ValueError unless `model` is a vision flavour name or a dict of VisionConfig fields
    (without the data's shape fields). Fields are checked at CIFAR's 32x32 (as the flavours are);
    build_classifier checks them again against the real data's size."""
    if isinstance(model, str):
        if flavour(model).family != "vision":
            raise ValueError(f"model flavour {model!r} is a {flavour(model).family} model, not a vision classifier")
        return
    if not isinstance(model, Mapping):
        raise ValueError(f"model must be a flavour name or a dict of VisionConfig fields, got {type(model).__name__}")
    clash = sorted(set(model) & set(DATA_SHAPE_FIELDS))
    if clash:
        raise ValueError(f"model spec sets {clash}; these come from the data")
    from_dict(VisionConfig, {"image_size": 32, **model})


def vision_config(model: ModelSpec, data: ImageSet) -> VisionConfig:
    """The VisionConfig of `model` (flavour name or fields) for images shaped like `data`."""
    check_model_spec(model)
    shape = {"in_channels": data.shape[0], "image_size": data.shape[1], "num_classes": data.num_classes}
    return resolve_model_config(model, "vision", **shape)


def build_classifier(model: ModelSpec, data: ImageSet) -> nn.Module:
    """A freshly initialised classifier (x [B, C, H, W] -> ModelOutput(logits [B, classes])) for
    `data`; seed the global RNG before calling it for a reproducible initialisation."""
    return build_vision_model(vision_config(model, data))


# ---- optimizer and schedule ------------------------------------------------------------------------

@dataclass
class AugmentSpec(StrictConfig):
    """The standard CIFAR augmentation: pad-`pad` random crops and horizontal flips."""

    pad: int = 4
    flip: bool = True


@dataclass
class ClassifierTrainSpec(StrictConfig):
    """How one classifier trains.

    max_steps: optimizer steps (None: the caller gives them, e.g. from epochs or a budget).
    global_batch_size: examples per optimizer step (one process, no accumulation).
    optimizer: "adamw" (the shared trainer's decoupled AdamW) or "sgd" (momentum, coupled L2 weight
    decay: the open_lth CIFAR recipes). schedule: a TrainConfig schedule (warmup-free cosine by default),
    or "step": constant LR multiplied by `gamma` at each of `milestones` (fractions of the run's steps,
    so a shortened run keeps the shape: open_lth's milestone_steps). betas, precision: None keeps the
    trainer's defaults (AdamW betas (0.9, 0.95); bf16 autocast on CUDA); "fp32" trains in full precision.
    augment: None, or the CIFAR crops and flips.
    """

    max_steps: int | None = None
    global_batch_size: int = 64
    optimizer: str = "adamw"
    momentum: float = 0.9
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "cosine"
    grad_clip: float | None = None
    augment: AugmentSpec | None = None
    milestones: tuple[float, ...] = (0.5, 0.75)
    gamma: float = 0.1
    betas: tuple[float, float] | None = None
    precision: str | None = None

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer={self.optimizer!r} is not valid; choose one of {list(OPTIMIZERS)}")
        self.milestones = tuple(self.milestones)
        if self.schedule == STEP_SCHEDULE and not all(0.0 < m < 1.0 for m in self.milestones):
            raise ValueError(f"milestones are fractions of the run's steps in (0, 1), got {list(self.milestones)}")
        if self.global_batch_size < 1:
            raise ValueError(f"global_batch_size must be >= 1, got {self.global_batch_size}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1 or None, got {self.max_steps}")

    def train_config(self, max_steps: int | None = None, lr: float | None = None, seed: int = 0,
                     log_every: int | None = None, eval_every: int = 0) -> TrainConfig:
        """The shared trainer's TrainConfig (no progress bar); `max_steps`/`lr` override the spec's."""
        steps = max_steps if max_steps is not None else self.max_steps
        if steps is None:
            raise ValueError("max_steps is not set: give it in the spec or to the call")
        extra = {k: v for k, v in (("betas", self.betas), ("precision", self.precision)) if v is not None}
        return TrainConfig(max_steps=steps, lr=self.lr if lr is None else lr, weight_decay=self.weight_decay,
                           schedule="constant" if self.schedule == STEP_SCHEDULE else self.schedule,
                           grad_clip=self.grad_clip, log_every=steps if log_every is None else log_every,
                           eval_every=eval_every, progress_bar=False, seed=seed, **extra)

    def step_decay(self, config: TrainConfig) -> StepDecay | None:
        """The callback that applies the "step" schedule to a run of `config` (None for other schedules)."""
        if self.schedule != STEP_SCHEDULE:
            return None
        return StepDecay(config.lr, [int(round(m * config.max_steps)) for m in self.milestones], self.gamma)

    def optimizer_factory(self) -> Callable[[nn.Module, TrainConfig], torch.optim.Optimizer] | None:
        """Trainer optimizer_factory: SGD with momentum, or None for the trainer's own AdamW."""
        return sgd_factory(self.momentum) if self.optimizer == "sgd" else None


class StepDecay:
    """Trainer callback: LR = base_lr * gamma ** (number of milestone steps <= the step about to run),
    as open_lth's milestone schedule. The trainer runs a constant schedule underneath; this sets the
    optimizer's LR at the start and after every step (after the trainer's scheduler has stepped)."""

    def __init__(self, base_lr: float, milestone_steps: Sequence[int], gamma: float):
        self.base_lr, self.milestone_steps, self.gamma = base_lr, sorted(milestone_steps), gamma

    def lr_at(self, step: int) -> float:
        return self.base_lr * self.gamma ** sum(step >= m for m in self.milestone_steps)

    def _apply(self, trainer) -> None:
        for group in trainer.optimizer.param_groups:
            group["lr"] = self.lr_at(trainer.step)

    def on_fit_start(self, trainer) -> None:
        self._apply(trainer)

    def on_step_end(self, trainer, record) -> None:
        self._apply(trainer)


def limit_threads(threads: int) -> None:
    """torch.set_num_threads(threads) when threads > 0 (0: leave torch's default)."""
    if threads:
        torch.set_num_threads(threads)


def train_classifier(model: nn.Module, train: ImageSet, spec: ClassifierTrainSpec, *, seed: int,
                     max_steps: int | None = None, lr: float | None = None, log_every: int | None = None,
                     loss_fn: Callable | None = None, eval_sets: Mapping[str, ImageSet] | None = None,
                     callbacks: Sequence[Any] = (), run_dir: str | Path | None = None,
                     checkpoint_every: int = 0) -> Trainer:
    """Train `model` in place on shuffled batches of `train` (batch order seeded by `seed`); returns
    the Trainer (`.history` holds "train" records and "<name>/acc", "<name>/loss" of `eval_sets`,
    evaluated at the end). loss_fn: default cross-entropy; a DistillationLoss distils.
    run_dir: the trainer's folder (metrics.jsonl; with checkpoint_every > 0 a checkpoint every that many
    steps, only the latest kept, none at the end; a rerun resumes from the latest); None: no files."""
    config = spec.train_config(max_steps=max_steps, lr=lr, seed=seed, log_every=log_every)
    if run_dir is not None:
        config = dataclasses.replace(config, run_dir=str(run_dir), checkpoint_every=checkpoint_every,
                                     checkpoint_at_end=False, keep_last_n=1)
    decay = spec.step_decay(config)
    if decay is not None:
        callbacks = [*callbacks, decay]
    augment = dataclasses.asdict(spec.augment) if spec.augment is not None else None
    return fit_classifier(model, train, config, spec.global_batch_size, loss_fn=loss_fn, eval_sets=eval_sets,
                          callbacks=callbacks, optimizer_factory=spec.optimizer_factory(), augment=augment)


# ---- callbacks: IMP, distillation ------------------------------------------------------------------

@dataclass
class ImpSpec(StrictConfig):
    """Iterative magnitude pruning with rewinding: `levels` rounds, each pruning `fraction` of the
    remaining weights (global magnitude), rewinding the rest to their values after `rewind_step`
    steps (0 = initialisation). include_head: prune the classifier layer too."""

    fraction: float = 0.2
    levels: int = 20
    rewind_step: int = 0
    include_head: bool = True

    def __post_init__(self) -> None:
        if not 0.0 < self.fraction < 1.0:
            raise ValueError(f"fraction must be in (0, 1), got {self.fraction}")
        if self.levels < 0 or self.rewind_step < 0:
            raise ValueError("levels and rewind_step must be >= 0")


def train_with_imp(model: nn.Module, train: ImageSet, test: ImageSet, spec: ClassifierTrainSpec, imp: ImpSpec,
                   seed: int) -> IMPResult:
    """IMP with rewinding of `model` on `train`: every level trains with `spec` (masks held by the
    MaskKeeper callback) and is scored by its test accuracy. Returns per level (0 = dense) the
    sparsity and {"test_acc"}."""

    def fit(m: nn.Module, masks: Masks, callbacks: list) -> dict:
        train_classifier(m, train, spec, seed=seed, callbacks=callbacks)
        return {"test_acc": accuracy(m, test)}

    return run_imp(model, fit, imp.levels, imp.fraction, rewind_step=imp.rewind_step, include_head=imp.include_head)


@dataclass
class DistillationSpec(StrictConfig):
    """Hinton distillation: loss = (1 - alpha) CE + alpha T^2 KL(teacher_T || student_T)."""

    temperature: float = 4.0
    alpha: float = 0.5


def distillation_loss(teachers: Sequence[nn.Module], max_steps: int, spec: DistillationSpec,
                      schedule: KDSchedule | None = None) -> DistillationLoss:
    """The trainer loss (and callback) distilling from `teachers` on the steps `schedule` picks;
    no teachers = plain cross-entropy. It counts every teacher forward pass."""
    return DistillationLoss(list(teachers), max_steps, temperature=spec.temperature, alpha=spec.alpha,
                            schedule=schedule or KDSchedule())


__all__ = ["AugmentSpec", "ClassifierTrainSpec", "DATASETS", "DistillationSpec", "ImageDataSpec", "ImpSpec",
           "KDSchedule", "ModelSpec", "STEP_SCHEDULE", "StepDecay", "build_classifier", "check_model_spec",
           "distillation_loss", "limit_threads", "load_image_data", "train_classifier", "train_with_imp",
           "vision_config"]
