"""What a paper's ``preflight.plan`` returns: one ``TrainingRunPlan`` per training run of a notebook.

    # papers/<name>/preflight.py
    def plan(notebook: str, spec, world: World) -> list[TrainingRunPlan]: ...
    def requirements(notebook: str, spec) -> list[DataRequirement]: ...     # optional

A plan names its model's cost (shared.preflight.estimate), how many samples it trains on, its
batch, optimizer, precision and parallelism; ``count`` folds identical runs (an LR grid) into one line.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .estimate import ModelCost

OPTIMIZER_STATE_BYTES = {"adamw": 8, "lionw": 4, "sgd": 4, "sgd-nomomentum": 0}
REQUIREMENT_KINDS = ("dir", "file", "jsonl", "json", "hf_checkpoint", "tokenizer")


@dataclass(frozen=True)
class World:
    """The launch: ``nproc_per_node`` GPUs on each of ``nnodes`` nodes."""
    nproc_per_node: int = 1
    nnodes: int = 1

    def __post_init__(self) -> None:
        if self.nproc_per_node < 1 or self.nnodes < 1:
            raise ValueError(f"nproc_per_node and nnodes must be >= 1, got {self.nproc_per_node}, {self.nnodes}")

    @property
    def size(self) -> int:
        return self.nproc_per_node * self.nnodes


@dataclass(frozen=True)
class OptimizerPlan:
    """name, peak lr, weight decay as configured and how it is applied (shared.train.optim):
    ``"lr"`` decays each weight by lr_t * wd per step (torch.optim.AdamW, Lion), ``"schedule"`` by
    wd * lr_t / lr_peak (decoupled from the LR's size; Composer's DecoupledAdamW)."""
    name: str
    lr: float
    weight_decay: float = 0.0
    weight_decay_scaling: str = "lr"

    @property
    def weight_decay_per_step(self) -> float:
        """The fraction of each (decayed) weight removed per step at peak LR."""
        if self.weight_decay_scaling == "schedule":
            return self.weight_decay
        return self.lr * self.weight_decay

    @property
    def state_bytes_per_param(self) -> int:
        if self.name not in OPTIMIZER_STATE_BYTES:
            raise ValueError(f"unknown optimizer {self.name!r}; known: {', '.join(OPTIMIZER_STATE_BYTES)}")
        return OPTIMIZER_STATE_BYTES[self.name]

    def as_dict(self) -> dict:
        return {"name": self.name, "lr": self.lr, "weight_decay": self.weight_decay,
                "weight_decay_scaling": self.weight_decay_scaling,
                "weight_decay_per_step": self.weight_decay_per_step}


def optimizer_of(train: Any) -> OptimizerPlan:
    """The OptimizerPlan of a TrainConfig (or a dict of its fields; TrainConfig's defaults fill gaps)."""
    get = train.get if isinstance(train, Mapping) else (lambda k, d=None: getattr(train, k, d))
    return OptimizerPlan(get("optimizer", "adamw"), float(get("lr", 1e-3)), float(get("weight_decay", 0.0)),
                         get("weight_decay_scaling", "schedule"))


@dataclass(frozen=True)
class DataRequirement:
    """A path under data_dir (or absolute) the notebook reads. kind: "dir" (exists, not empty),
    "file", "jsonl" (first line is a JSON object), "json", "hf_checkpoint" (config.json and weights),
    "tokenizer" (tokenizer.json or a vocabulary file)."""
    path: str
    kind: str = "dir"
    what: str = ""

    def __post_init__(self) -> None:
        if self.kind not in REQUIREMENT_KINDS:
            raise ValueError(f"unknown requirement kind {self.kind!r}; valid: {', '.join(REQUIREMENT_KINDS)}")


@dataclass(frozen=True)
class TrainingRunPlan:
    """One training run (or ``count`` identical ones) of a notebook's preset.

    samples: sequences or images the run trains on (max_steps x global_batch_size); micro_batch_size:
    per rank per forward. precision "bf16" or "amp_fp16" (autocast, fp32 master weights) or "fp32";
    parallelism "none" | "ddp" | "fsdp" | "fsdp_grad_op" (ZeRO-2); activation_checkpointing None lets
    the preflight turn it on where the run does not fit without it. frozen_param_bytes: bytes per
    frozen parameter (a LoRA base in bf16: 2).
    """
    name: str
    model: ModelCost
    samples: int
    max_steps: int
    global_batch_size: int | None
    micro_batch_size: int
    optimizer: OptimizerPlan
    precision: str = "bf16"
    parallelism: str = "fsdp"
    activation_checkpointing: bool | None = None
    count: int = 1
    frozen_param_bytes: int = 4
    config: dict = field(default_factory=dict)
    note: str = ""

    @property
    def tokens(self) -> int | None:
        per = self.model.tokens_per_sample
        return None if per is None else self.samples * per

    @property
    def flops(self) -> float:
        """Training FLOPs of one run."""
        return self.samples * self.model.flops_per_sample


def run_plan(name: str, model: ModelCost, train: Any, *, count: int = 1, config: Mapping | None = None,
             note: str = "", frozen_param_bytes: int = 4, max_steps: int | None = None,
             activation_checkpointing: bool | None = None) -> TrainingRunPlan:
    """A plan from a TrainConfig (or dict of its fields): steps, batch, optimizer, precision, parallelism."""
    get = train.get if isinstance(train, Mapping) else (lambda k, d=None: getattr(train, k, d))
    steps = int(max_steps if max_steps is not None else get("max_steps", 100))
    micro = get("micro_batch_size") or get("global_batch_size") or 1
    global_batch = get("global_batch_size")
    per_step = global_batch if global_batch is not None else micro * (get("grad_accum") or 1)
    return TrainingRunPlan(name, model, steps * int(per_step), steps, global_batch, int(micro), optimizer_of(train),
                           get("precision", "bf16"), get("parallelism", "none"),
                           activation_checkpointing if activation_checkpointing is not None
                           else get("activation_checkpointing"), count, frozen_param_bytes,
                           dict(config or {}), note)


def scale_of(presets: Any, spec: Any, default: str = "full") -> str:
    """The scale whose preset (of a NotebookPresets) builds into ``spec``; ``default`` if none does
    (a preset with overrides)."""
    for scale in presets.scales:
        try:
            if presets.build(scale) == spec:
                return scale
        except ValueError:
            continue
    return default


__all__ = ["DataRequirement", "OPTIMIZER_STATE_BYTES", "OptimizerPlan", "REQUIREMENT_KINDS", "TrainingRunPlan",
           "World", "optimizer_of", "run_plan", "scale_of"]
