"""Preflight plans of the masking-schedule notebook (``python -m shared.preflight masking_schedules``).

schedules: one BERT pretraining per masking schedule and seed (the schedule changes which tokens are
masked, not the cost), then the final checkpoint of each schedule in ``finetune_schedules``
finetuned on every task (at the pretraining run's seed, or each of eval.seeds).
"""
from __future__ import annotations

from shared.preflight import DataRequirement, TrainingRunPlan, World
from shared.preflight.recipes import finetune_plan, mlm_pretrain_plan, mlm_requirements


def plan(notebook: str, spec, world: World) -> list[TrainingRunPlan]:
    """Per schedule: its pretraining runs (one per seed) and their finetuning runs."""
    if notebook != "schedules":
        return []
    plans = []
    seeds = len(spec.seeds)
    finetune_seeds = len(spec.eval.seeds) if spec.eval.seeds else 1
    for name in spec.schedules:
        plans.append(mlm_pretrain_plan(name, spec.model, spec.data, spec.train, spec.micro_batch_size, count=seeds,
                                       note=f"{seeds} seed(s)"))
        if not (spec.finetune_schedules is None or name in spec.finetune_schedules):
            continue
        if not spec.eval.finetune_options():
            plans.append(finetune_plan(f"{name} finetune", spec.model, spec.data, spec.eval.finetune,
                                       count=seeds * finetune_seeds * len(spec.eval.tasks)))
            continue
        # per-task recipes and seeds (eval.per_task / eval.task_seeds): one plan per task
        plans += [finetune_plan(f"{name} finetune {task}", spec.model, spec.data, cfg, count=seeds * n)
                  for task, cfg, n in spec.eval.finetune_runs(default_seeds=1)]
    return plans


def requirements(notebook: str, spec) -> list[DataRequirement]:
    return mlm_requirements(spec.data, spec.eval.glue_dir) if notebook == "schedules" else []
