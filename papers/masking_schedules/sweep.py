"""The masking-rate-schedule sweep (Ankner et al., EACL 2024) on the shared MLM pipeline: every schedule
x pretraining seed, the MLM loss at 15% along training, the final checkpoint finetuned downstream.

    spec = scales.NOTEBOOKS["schedules"].build("smoke")
    curves, finals = schedule_runs(spec, out_dir, tokenizer, tasks, seeds=[0, 1, 2])
    reach, summary = schedule_summary(curves, finals, spec.schedules, spec.train.max_steps)
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
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
    bert_config,
    pretrain_and_finetune,
)
from shared.train.config import TrainConfig
from shared.utils.config import StrictConfig

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
class SchedulesSpec(StrictConfig):
    """The schedules notebook: ``model`` (bert flavour or BertConfig fields) pretrained under each of
    ``schedules`` (keys of SCHEDULES) for each of ``seeds`` (offsets added to the notebook's seed);
    ``train`` is the trainer recipe (max_steps; log_every = eval_every, the MLM-loss curve's
    interval); the final checkpoint of each schedule in ``finetune_schedules`` (None: all) is
    finetuned on ``eval`` with its pretraining seed (the others get downstream NaN)."""
    model: str | dict[str, Any]
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
        bert_config(self.model)
        for name in self.schedules:
            schedule(name)
        missing = sorted(set(self.finetune_schedules or ()) - set(self.schedules))
        if missing:
            raise ValueError(f"finetune_schedules {missing} are not among schedules {list(self.schedules)}")

    def finetuned(self, name: str) -> bool:
        """Whether schedule ``name``'s final checkpoints are finetuned downstream."""
        return self.finetune_schedules is None or name in self.finetune_schedules


def _run_name(name: str, seed: int) -> str:
    return f"{name.replace(' ', '_').replace('%', '').replace('->', '_to_')}_seed{seed}"


def schedule_runs(spec: SchedulesSpec, out_dir: str | Path, tokenizer, tasks: Sequence[Task], seeds: Sequence[int], *,
                  nproc_per_node: int = 1, nnodes: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pretrain every schedule x seed (run dirs ``out_dir/pretrain/<schedule>_seed<s>``) and finetune
    the final checkpoint with seed s (schedules in ``spec.finetune_schedules``). Returns (curves: {"schedule", "seed", "step", "mlm15_loss",
    "train_mask_rate"} per evaluation, finals: {"schedule", "seed", "mlm15_loss", "downstream",
    "task_<name>"...} per run)."""
    curves, finals = [], []
    for name in spec.schedules:
        for s in seeds:
            config = MLMPretrainConfig(model=spec.model, masking=schedule(name),
                                       train=dataclasses.replace(spec.train, seed=s), data=spec.data,
                                       micro_batch_size=spec.micro_batch_size, eval_samples=spec.eval_samples)
            history, runs = pretrain_and_finetune(config, Path(out_dir) / "pretrain" / _run_name(name, s), tokenizer,
                                                  tasks if spec.finetuned(name) else [], spec.eval.finetune, seeds=[s] if spec.eval.seeds is None
                                                  else spec.eval.seeds, nproc_per_node=nproc_per_node, nnodes=nnodes,
                                                  finetune_options=spec.eval.finetune_options())
            rates = {r["step"]: r["mask_rate"] for r in history.train}
            curves += [{"schedule": name, "seed": s, "step": r["step"], "mlm15_loss": r["mlm15/loss"],
                        "train_mask_rate": rates.get(r["step"])} for r in history.eval]
            scores = glue_average(runs)
            finals.append({"schedule": name, "seed": s, "mlm15_loss": history.eval[-1]["mlm15/loss"],
                           "downstream": scores["average"], **{f"task_{k}": v for k, v in scores["tasks"].items()}})
        print(name, "done")
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


__all__ = ["BASELINE", "MEAN_RATE_CONTROL", "SCHEDULES", "SchedulesSpec", "paired_difference", "schedule", "schedule_runs",
           "schedule_summary"]
