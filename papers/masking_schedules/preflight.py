"""Preflight plans of the masking-schedule notebook (``python -m shared.preflight masking_schedules``).

schedules: per model size (one at smoke and small; BERT-base and BERT-large at full), one BERT
pretraining per masking schedule and seed (the schedule changes which tokens are masked, not the
cost), then the final checkpoint of each schedule in ``finetune_schedules`` finetuned on every task
(at the pretraining run's seed, or each of eval.seeds).
"""
from __future__ import annotations

from shared.pipelines.mlm_pretrain import TRANSFORMERS, is_transformers_spec, planning_spec
from shared.preflight import DataRequirement, TrainingRunPlan, World
from shared.preflight.recipes import finetune_plan, mlm_pretrain_plan, mlm_requirements


def plan(notebook: str, spec, world: World) -> list[TrainingRunPlan]:
    """Per model size and schedule: its pretraining runs (one per seed) and their finetuning runs.
    With several sizes each plan's name starts with the size ("large linear 30%->15%")."""
    if notebook != "schedules":
        return []
    plans = []
    seeds = len(spec.seeds)
    finetune_seeds = len(spec.eval.seeds) if spec.eval.seeds else 1
    for size, entry in spec.models.items():
        prefix = f"{size} " if len(spec.models) > 1 else ""
        model = planning_spec(entry.model)          # a transformers spec sized as our encoder of its shape
        for name in spec.schedules:
            plans.append(mlm_pretrain_plan(f"{prefix}{name}", model, spec.data, spec.train_for(size),
                                           spec.micro_batch_size, count=seeds, note=f"{seeds} seed(s)"))
            if not spec.finetuned(name):
                continue
            if not spec.eval.finetune_options():
                plans.append(finetune_plan(f"{prefix}{name} finetune", model, spec.data, spec.eval.finetune,
                                           count=seeds * finetune_seeds * len(spec.eval.tasks)))
                continue
            # per-task recipes and seeds (eval.per_task / eval.task_seeds): one plan per task
            plans += [finetune_plan(f"{prefix}{name} finetune {task}", model, spec.data, cfg, count=seeds * n)
                      for task, cfg, n in spec.eval.finetune_runs(default_seeds=1)]
    return plans


def requirements(notebook: str, spec) -> list[DataRequirement]:
    """The token caches, tokenizer and GLUE folder, and the BertConfig of each transformers model."""
    if notebook != "schedules":
        return []
    configs = {e.model[TRANSFORMERS] for e in spec.models.values() if is_transformers_spec(e.model)}
    return mlm_requirements(spec.data, spec.eval.glue_dir) + [
        DataRequirement(f"{c}/config.json", "json", "transformers BertConfig of the pretrained model")
        for c in sorted(configs)]
