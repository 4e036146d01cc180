"""`TrainConfig`: every knob of the shared trainer, typed, validated, JSON round-trippable.

The config travels as JSON to torchrun workers and into every checkpoint, so every field is a
plain literal (int, float, str, bool, None, or a pair of floats).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from shared.utils.config import StrictConfig

OPTIMIZERS = ("adamw", "lionw")
SCHEDULES = ("cosine", "linear", "constant", "inv_sqrt")
PRECISIONS = ("fp32", "bf16", "amp_fp16")
PARALLELISMS = ("none", "ddp", "fsdp", "fsdp_grad_op")
SHARDED_PARALLELISMS = ("fsdp", "fsdp_grad_op")   # FSDP2 (fully_shard): sharded checkpoints, meta init
WEIGHT_DECAY_SCALINGS = ("schedule", "lr")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not valid; choose one of {list(choices)}")


@dataclass
class TrainConfig(StrictConfig):
    """Configuration of one training run.

    Batch: the trainer draws `grad_accum` micro-batches per optimizer step on every rank. Give
    either `grad_accum` directly (default 1), or `global_batch_size` and `micro_batch_size`, from
    which grad_accum = global / (micro * world_size). When `micro_batch_size` is set, every
    micro-batch is checked to hold that many samples.

    Optimizer: "adamw" or "lionw". Weight decay is decoupled (applied to the weights, not the
    gradient). `weight_decay_scaling="schedule"` decays by wd * lr_t / lr_peak per step (Loshchilov &
    Hutter 2019, and MosaicML Composer's DecoupledAdamW / DecoupledLionW, whose configs give wd
    values like 1e-5); `"lr"` decays by wd * lr_t (torch.optim.AdamW; Chen et al. 2023's Lion).
    Biases and 1-D (norm) parameters get no decay unless `decay_norm_and_bias`.

    Schedule: warmup for `warmup_steps` (or `warmup_fraction` of max_steps), then "cosine" or
    "linear" decay to `alpha_f` * lr at max_steps, "constant", or "inv_sqrt" (floored at alpha_f).
    `cooldown_steps` (with "constant" only): the last that many updates decay linearly to `alpha_f` * lr
    at max_steps (warmup-stable-decay, so checkpoints before the cooldown are constant-LR branch points;
    a cooldown longer than the run decays from its first update).

    Precision: "bf16" autocasts to bfloat16 on CUDA; on CPU it runs fp32. "amp_fp16" (Composer's
    `amp_fp16`) autocasts to float16 on every device, CPU included, with fp32 master weights and
    dynamic loss scaling (`torch.amp.GradScaler` at torch's defaults: scale 2**16, halved on a step
    whose gradients hold inf/nan, which is skipped, doubled after 2000 clean steps).
    Parallelism: "ddp"; "fsdp" (FSDP2 `fully_shard`, ZeRO-3: parameters, gradients and optimizer
    state sharded; each block's parameters are gathered for its forward and again for its backward);
    "fsdp_grad_op" (ZeRO-2, FSDP1's SHARD_GRAD_OP: the same, but parameters gathered in the forward
    stay unsharded until the backward, one all-gather per block per micro-batch and more memory).
    Applied only when world_size > 1 (see shared.train.distributed); with one process any choice
    runs unwrapped, so one config serves the notebook and the torchrun launch.
    `activation_checkpointing`: keep only each block's input for backward and recompute the block
    (about a third more compute for a block's activations; `shared.preflight` says when it is needed).
    `compile`: torch.compile (the model, or each FSDP block); `compile_dynamic` is its `dynamic`: None
    lets torch mark a dimension dynamic once it changes (variable-length batches), False compiles one
    static graph per input shape. A model whose blocks are instances of one class at different shapes
    (SD2's UNet) needs False: the symbolic shapes torch derives from the second instance on fail in the
    inductor under channels_last ("cannot determine truth value of Relational").

    Checkpoints go to `run_dir/checkpoints/step_XXXXXXXX/`, metrics to `run_dir/metrics.jsonl`.
    `resume`: "latest" (the newest complete checkpoint in run_dir, if any), None (start fresh;
    refused if run_dir already holds checkpoints), or a path to one checkpoint directory.
    `eval_every`, `checkpoint_every`, `log_every`: 0 turns the periodic action off.
    """

    max_steps: int = 100
    # batch
    global_batch_size: int | None = None
    micro_batch_size: int | None = None
    grad_accum: int | None = None
    # optimizer
    optimizer: str = "adamw"
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 0.0
    weight_decay_scaling: str = "schedule"
    decay_norm_and_bias: bool = False
    # LR schedule
    schedule: str = "cosine"
    warmup_steps: int = 0
    warmup_fraction: float | None = None
    alpha_f: float = 0.0
    cooldown_steps: int = 0
    grad_clip: float | None = 1.0
    # execution
    precision: str = "bf16"
    compile: bool = False
    compile_dynamic: bool | None = None
    activation_checkpointing: bool = False
    parallelism: str = "none"
    device: str | None = None
    # logging, eval, checkpoints
    log_every: int = 1
    eval_every: int = 0
    eval_at_start: bool = False
    checkpoint_every: int = 0
    checkpoint_at_end: bool = True
    keep_last_n: int | None = 2
    run_dir: str | None = None
    resume: str | None = "latest"
    seed: int = 0
    progress_bar: bool = True
    flops_per_token: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.betas, list):
            self.betas = tuple(self.betas)
        if self.run_dir is not None:
            self.run_dir = str(self.run_dir)
        if self.resume is not None:
            self.resume = str(self.resume)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("schedule", self.schedule, SCHEDULES)
        _check_choice("precision", self.precision, PRECISIONS)
        _check_choice("parallelism", self.parallelism, PARALLELISMS)
        _check_choice("weight_decay_scaling", self.weight_decay_scaling, WEIGHT_DECAY_SCALINGS)
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {self.max_steps}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas}")
        if self.lr < 0 or self.weight_decay < 0 or self.eps < 0:
            raise ValueError("lr, weight_decay and eps must be >= 0")
        if self.warmup_fraction is not None:
            if self.warmup_steps:
                raise ValueError("give warmup_steps or warmup_fraction, not both")
            if not 0.0 <= self.warmup_fraction <= 1.0:
                raise ValueError(f"warmup_fraction must be in [0, 1], got {self.warmup_fraction}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.cooldown_steps < 0 or (self.cooldown_steps and self.schedule != "constant"):
            raise ValueError(f"cooldown_steps={self.cooldown_steps}: a cooldown (>= 0) goes with schedule "
                             f"'constant' only, got {self.schedule!r}")
        if not 0.0 <= self.alpha_f <= 1.0:
            raise ValueError(f"alpha_f must be in [0, 1], got {self.alpha_f}")
        for name in ("log_every", "eval_every", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 (0 = off)")
        if self.keep_last_n is not None and self.keep_last_n < 1:
            raise ValueError("keep_last_n must be >= 1, or None to keep every checkpoint")
        if self.grad_accum is not None and self.grad_accum < 1:
            raise ValueError(f"grad_accum must be >= 1, got {self.grad_accum}")
        if self.grad_accum is not None and self.global_batch_size is not None:
            raise ValueError("give grad_accum, or global_batch_size with micro_batch_size, not both")
        if self.global_batch_size is not None and self.micro_batch_size is None:
            raise ValueError("global_batch_size needs micro_batch_size to derive grad_accum")

    # ---- derived values ----
    def resolve_warmup_steps(self) -> int:
        if self.warmup_fraction is not None:
            return int(round(self.warmup_fraction * self.max_steps))
        return self.warmup_steps

    def resolve_grad_accum(self, world_size: int = 1) -> int:
        """Micro-batches per optimizer step on each rank."""
        if self.global_batch_size is None:
            return self.grad_accum or 1
        per_step = self.micro_batch_size * world_size
        if self.global_batch_size % per_step:
            raise ValueError(
                f"global_batch_size={self.global_batch_size} is not a multiple of "
                f"micro_batch_size * world_size = {self.micro_batch_size} * {world_size}")
        return self.global_batch_size // per_step

    # ---- serialization: from_dict (strict) and to_dict come from StrictConfig ----
    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def from_json(cls, path: str | Path) -> TrainConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))
