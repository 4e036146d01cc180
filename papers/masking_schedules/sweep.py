"""The masking-rate-schedule sweep (Ankner et al., EACL 2024) on the shared MLM pipeline: every model size
x schedule x pretraining seed, the MLM loss at 15% along training, the final checkpoint finetuned downstream.

    spec = scales.NOTEBOOKS["schedules"].build("smoke")
    for size in spec.models:                       # one size at smoke and small; base and large at full
        curves, finals = schedule_runs(spec, out_dir, tokenizer, tasks, seeds=[0, 1, 2], size=size)
        reach, summary = schedule_summary(curves, finals, spec.schedules, spec.train_for(size).max_steps)
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shared.data.mlm import MaskingSchedule
from shared.eval.glue import Task, glue_average
from shared.pipelines.mlm_pretrain import (
    DownstreamSpec,
    MLMDataSpec,
    MLMPretrainConfig,
    check_model_spec,
    pretrain_and_finetune,
)
from shared.train.config import TrainConfig
from shared.utils.config import StrictConfig, from_dict

SCHEDULES: dict[str, dict[str, Any]] = {
    "fixed 15%": {"kind": "constant", "p_i": 0.15},
    "fixed 30%": {"kind": "constant", "p_i": 0.30},
    # the control that isolates the schedule from the average masking rate: a constant at the mean rate of
    # linear 30%->15% (the same expected number of prediction targets over training)
    "fixed 22.5%": {"kind": "constant", "p_i": 0.225},
    "linear 30%->15%": {"kind": "linear", "p_i": 0.30, "p_f": 0.15},
    "linear 15%->30%": {"kind": "linear", "p_i": 0.15, "p_f": 0.30},
    # not verified as the paper's (PAPERS.md: other shapes unverified); ours, for the larger scales
    "cosine 30%->15%": {"kind": "cosine", "p_i": 0.30, "p_f": 0.15},
    "step 30%->15%": {"kind": "step", "p_i": 0.30, "p_f": 0.15, "step_at": 0.5},
}
BASELINE = "fixed 15%"
MEAN_RATE_CONTROL = "fixed 22.5%"


def schedule(name: str) -> MaskingSchedule:
    """The MaskingSchedule named ``name`` (a key of SCHEDULES)."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; valid: {list(SCHEDULES)}")
    return MaskingSchedule.from_dict(SCHEDULES[name])


@dataclass(frozen=True)
class ModelSize(StrictConfig):
    """One model size of the sweep: ``model`` (a bert flavour, ``{"flavour": name, **fields}`` or
    BertConfig fields) and ``train``, the TrainConfig fields in which this size's recipe differs
    from the sweep's shared ``train`` (e.g. a lower peak lr for BERT-large)."""
    model: str | dict[str, Any]
    train: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SchedulesSpec(StrictConfig):
    """The schedules notebook: each of ``models`` (size name -> ModelSize) pretrained under each of
    ``schedules`` (keys of SCHEDULES) for each of ``seeds`` (offsets added to the notebook's seed);
    ``train`` is the trainer recipe the sizes share (max_steps; log_every = eval_every, the MLM-loss
    curve's interval); the final checkpoint of each schedule in ``finetune_schedules`` (None: all)
    is finetuned on ``eval`` with its pretraining seed (the others get downstream NaN). The first
    size is the one the notebook's claims are measured on."""
    models: dict[str, ModelSize]
    schedules: tuple[str, ...]
    seeds: tuple[int, ...]
    data: MLMDataSpec
    train: TrainConfig
    micro_batch_size: int
    eval: DownstreamSpec
    eval_samples: int | None = None
    finetune_schedules: tuple[str, ...] | None = None
    needs_data_dir: bool = False

    def __post_init__(self):
        if not self.models:
            raise ValueError("models is empty: name at least one model size")
        for size, entry in self.models.items():
            check_model_spec(entry.model)
            self.train_for(size)                    # an unknown or mistyped trainer field fails here
        for name in self.schedules:
            schedule(name)
        missing = sorted(set(self.finetune_schedules or ()) - set(self.schedules))
        if missing:
            raise ValueError(f"finetune_schedules {missing} are not among schedules {list(self.schedules)}")

    def finetuned(self, name: str) -> bool:
        """Whether schedule ``name``'s final checkpoints are finetuned downstream."""
        return self.finetune_schedules is None or name in self.finetune_schedules

    def train_for(self, size: str) -> TrainConfig:
        """The trainer recipe of model size ``size``: the shared ``train`` with the size's fields over it."""
        if size not in self.models:
            raise ValueError(f"unknown model size {size!r}; valid: {list(self.models)}")
        overrides = self.models[size].train
        if not overrides:
            return self.train
        return from_dict(TrainConfig, {**self.train.to_dict(), **overrides}, where=f"models.{size}.train")

    def run_root(self, out_dir: str | Path, size: str) -> Path:
        """Where size ``size``'s pretraining runs go: ``out_dir/pretrain`` with one size,
        ``out_dir/pretrain/<size>`` with several."""
        root = Path(out_dir) / "pretrain"
        return root if len(self.models) == 1 else root / size


def _run_name(name: str, seed: int) -> str:
    return f"{name.replace(' ', '_').replace('%', '').replace('->', '_to_')}_seed{seed}"


def schedule_runs(spec: SchedulesSpec, out_dir: str | Path, tokenizer, tasks: Sequence[Task], seeds: Sequence[int], *,
                  size: str | None = None, nproc_per_node: int = 1,
                  nnodes: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pretrain model size ``size`` (None: the first of spec.models) under every schedule x seed (run
    dirs ``spec.run_root(out_dir, size)/<schedule>_seed<s>``) and finetune the final checkpoint with
    seed s (schedules in ``spec.finetune_schedules``). Returns (curves: {"schedule", "seed", "step",
    "mlm15_loss", "train_mask_rate"} per evaluation, finals: {"schedule", "seed", "mlm15_loss",
    "downstream", "task_<name>"...} per run)."""
    size = next(iter(spec.models)) if size is None else size
    model, train = spec.models[size].model, spec.train_for(size)
    curves, finals = [], []
    for name in spec.schedules:
        for s in seeds:
            config = MLMPretrainConfig(model=model, masking=schedule(name), train=dataclasses.replace(train, seed=s),
                                       data=spec.data, micro_batch_size=spec.micro_batch_size,
                                       eval_samples=spec.eval_samples)
            history, runs = pretrain_and_finetune(
                config, spec.run_root(out_dir, size) / _run_name(name, s), tokenizer,
                tasks if spec.finetuned(name) else [], spec.eval.finetune,
                seeds=[s] if spec.eval.seeds is None else spec.eval.seeds, nproc_per_node=nproc_per_node,
                nnodes=nnodes, finetune_options=spec.eval.finetune_options(), final_only=True)
            rates = {r["step"]: r["mask_rate"] for r in history.train}
            curves += [{"schedule": name, "seed": s, "step": r["step"], "mlm15_loss": r["mlm15/loss"],
                        "train_mask_rate": rates.get(r["step"])} for r in history.eval]
            scores = glue_average(runs, spec.eval.min_metric)
            finals.append({"schedule": name, "seed": s, "mlm15_loss": history.eval[-1]["mlm15/loss"],
                           "downstream": scores["average"], **{f"task_{k}": v for k, v in scores["tasks"].items()}})
        print(f"{size}: {name} done" if len(spec.models) > 1 else f"{name} done")
    return pd.DataFrame(curves), pd.DataFrame(finals)


def schedule_summary(curves: pd.DataFrame, finals: pd.DataFrame, schedules: Sequence[str], max_steps: int,
                     base: str = BASELINE) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(reach, summary). reach: per schedule and seed, the first evaluated step at which the MLM loss
    is at or below the ``base`` run's final loss of that seed, and the speed-up max_steps / step.
    summary: per schedule (in ``schedules`` order), mean and sd over seeds of the final MLM loss and
    downstream average, the mean speed-up and how many seeds reached the target."""
    target = finals[finals.schedule == base].set_index("seed").mlm15_loss
    reach = []
    for (name, s), g in curves.groupby(["schedule", "seed"]):
        hit = g[g.mlm15_loss <= target[s] + 1e-12].step
        step = int(hit.min()) if len(hit) else None
        reach.append({"schedule": name, "seed": s, "steps_to_fixed15_final": step,
                      "speedup": max_steps / step if step else np.nan})
    reach = pd.DataFrame(reach)
    summary = (finals.groupby("schedule").agg(mlm15_loss=("mlm15_loss", "mean"), mlm15_loss_sd=("mlm15_loss", "std"),
                                              downstream=("downstream", "mean"), downstream_sd=("downstream", "std"))
               .join(reach.groupby("schedule").agg(speedup=("speedup", "mean"), reached=("speedup", "count")))
               .reindex(list(schedules)))
    return reach, summary


def paired_difference(finals: pd.DataFrame, metric: str, a: str, b: str) -> dict[str, Any]:
    """Schedule ``a`` minus schedule ``b`` on ``metric``, paired by seed: mean, sd, per seed."""
    x = finals[finals.schedule == a].set_index("seed")[metric] - finals[finals.schedule == b].set_index("seed")[metric]
    return {"mean": float(x.mean()), "sd": float(x.std()) if len(x) > 1 else 0.0, "per_seed": x.round(4).tolist()}


def downstream_gains(finals_by_size: Mapping[str, pd.DataFrame], paper: Mapping[str, float],
                     a: str = "linear 30%->15%", b: str = BASELINE) -> pd.DataFrame:
    """Per model size, schedule ``a`` minus ``b`` on the downstream average (percentage points),
    paired by seed, beside the paper's gain for that size (``paper["glue_gain_<size>"]``, NaN when
    the paper reports none). Rows {"size", "ours_mean", "ours_sd", "seeds", "paper_glue_gain"}."""
    rows = []
    for size, finals in finals_by_size.items():
        d = paired_difference(finals, "downstream", a, b)
        rows.append({"size": size, "ours_mean": d["mean"], "ours_sd": d["sd"], "seeds": len(d["per_seed"]),
                     "paper_glue_gain": paper.get(f"glue_gain_{size}", np.nan)})
    return pd.DataFrame(rows)


__all__ = ["BASELINE", "MEAN_RATE_CONTROL", "SCHEDULES", "ModelSize", "SchedulesSpec", "downstream_gains",
           "paired_difference", "schedule", "schedule_runs", "schedule_summary"]
