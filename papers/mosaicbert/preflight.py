"""Preflight plans of the MosaicBERT notebooks (``python -m shared.preflight mosaicbert``).

pareto: every arch x size pretrained (experiments.pareto_runs), ``checkpoints`` checkpoints of each
finetuned on every task at every finetuning seed, plus a randomly initialised encoder per size.
ablation: MosaicBERT and each ablation pretrained, the final checkpoint finetuned.
padding_throughput times forward passes and trains nothing.
"""
from __future__ import annotations

from papers.mosaicbert.experiments import ABLATIONS
from shared.preflight import DataRequirement, TrainingRunPlan, World
from shared.preflight.recipes import finetune_plan, mlm_pretrain_plan, mlm_requirements


def plan(notebook: str, spec, world: World) -> list[TrainingRunPlan]:
    """Every pretraining run of ``notebook`` and its finetuning runs (folded per encoder)."""
    seeds = len(spec.eval.seeds or (0,)) if notebook != "padding_throughput" else 0
    if notebook == "pareto":
        plans = []
        for arch, by_size in spec.models.items():
            for size, model in by_size.items():
                plans.append(mlm_pretrain_plan(f"{arch}-{size}", model, spec.data, spec.train, spec.micro_batch_size,
                                               note=f"masking {spec.mask_rates[arch]:.0%}"))
                plans.append(finetune_plan(f"{arch}-{size} finetune", model, spec.data, spec.eval.finetune,
                                           count=spec.checkpoints * len(spec.eval.tasks) * seeds))
        for size, model in spec.reference.items():
            plans.append(finetune_plan(f"no pretraining-{size} finetune", model, spec.data, spec.eval.finetune,
                                       count=len(spec.eval.tasks) * seeds))
        return plans
    if notebook == "ablation":
        plans = []
        for name in spec.ablations:
            change = {k: v for k, v in ABLATIONS[name].items() if k != "mask_rate"}
            plans.append(mlm_pretrain_plan(name, spec.model, spec.data, spec.train, spec.micro_batch_size,
                                           switches=change))
            plans.append(finetune_plan(f"{name} finetune", spec.model, spec.data, spec.eval.finetune,
                                       count=len(spec.eval.tasks) * seeds, switches=change))
        return plans
    return []


def requirements(notebook: str, spec) -> list[DataRequirement]:
    """The token caches, tokenizer and GLUE folder the pretraining and finetuning read."""
    if notebook in ("pareto", "ablation"):
        return mlm_requirements(spec.data, spec.eval.glue_dir)
    return []
