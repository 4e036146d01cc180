"""Preflight plans of the MosaicBERT notebooks (``python -m shared.preflight mosaicbert``).

pareto: every arch x size pretrained (experiments.pareto_runs), ``checkpoints`` checkpoints of each
finetuned on every task at every finetuning seed, plus a randomly initialised encoder per size.
ablation: MosaicBERT and each ablation pretrained, the final checkpoint finetuned.
padding_throughput times forward passes and trains nothing.
"""
from __future__ import annotations

from papers.mosaicbert.experiments import ABLATIONS
from shared.pipelines.mlm_pretrain import TRANSFORMERS, is_transformers_spec, planning_spec
from shared.preflight import DataRequirement, TrainingRunPlan, World
from shared.preflight.recipes import finetune_plan, mlm_pretrain_plan, mlm_requirements


def _finetune_plans(name: str, model, spec, count: int, switches=None) -> list[TrainingRunPlan]:
    """The finetuning runs of one encoder, ``count`` times: one plan for a shared recipe, one per task
    when tasks have their own recipes or seeds (eval.per_task / eval.task_seeds)."""
    model = planning_spec(model)
    if not spec.eval.finetune_options():
        seeds = len(spec.eval.seeds or (0,))
        return [finetune_plan(name, model, spec.data, spec.eval.finetune, count=count * len(spec.eval.tasks) * seeds,
                              switches=switches)]
    return [finetune_plan(f"{name} {task}", model, spec.data, cfg, count=count * seeds, switches=switches)
            for task, cfg, seeds in spec.eval.finetune_runs()]


def plan(notebook: str, spec, world: World) -> list[TrainingRunPlan]:
    """Every pretraining run of ``notebook`` and its finetuning runs (folded per encoder)."""
    if notebook == "pareto":
        plans = []
        pretrain_seeds = len(spec.pretrain_seeds or (0,))
        for arch, by_size in spec.models.items():
            for size, model in by_size.items():
                plans.append(mlm_pretrain_plan(f"{arch}-{size}", planning_spec(model), spec.data, spec.train,
                                               spec.micro_batch_size, count=pretrain_seeds,
                                               note=f"masking {spec.mask_rates[arch]:.0%}"))
                plans += _finetune_plans(f"{arch}-{size} finetune", model, spec, spec.checkpoints * pretrain_seeds)
        for size, model in spec.reference.items():
            plans += _finetune_plans(f"no pretraining-{size} finetune", model, spec, 1)
        return plans
    if notebook == "ablation":
        plans = []
        for name in spec.ablations:
            change = {k: v for k, v in ABLATIONS[name].items() if k != "mask_rate"}
            plans.append(mlm_pretrain_plan(name, spec.model, spec.data, spec.train, spec.micro_batch_size,
                                           switches=change))
            plans += _finetune_plans(f"{name} finetune", spec.model, spec, 1, switches=change)
        return plans
    return []


def requirements(notebook: str, spec) -> list[DataRequirement]:
    """The token caches, tokenizer and GLUE folder the pretraining and finetuning read."""
    if notebook in ("pareto", "ablation"):
        reqs = mlm_requirements(spec.data, spec.eval.glue_dir)
        if notebook == "pareto":
            configs = {m[TRANSFORMERS] for by_size in (*spec.models.values(), spec.reference) for m in by_size.values()
                       if is_transformers_spec(m)}
            reqs += [DataRequirement(f"{c}/config.json", "json", "transformers BertConfig of the BERT baseline")
                     for c in sorted(configs)]
        return reqs
    return []
