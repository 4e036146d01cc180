"""Preflight plans of the scaling_inference notebooks (``python -m shared.preflight scaling_inference``).

analytic trains nothing. empirical trains every (size, tokens-per-parameter ratio) point of the grid
and the noise replicates (empirical.plan_grid; runs over the per-run FLOP cap are skipped there and
here), each an MPT-style decoder with the size's batch and LR (as empirical.run_spec sets them).
"""
from __future__ import annotations

from papers.scaling_inference.empirical import gpt_config, plan_grid
from shared.preflight import DataRequirement, TrainingRunPlan, World, gpt_cost, run_plan

# full scale reads its tokenizer from data_dir: EleutherAI/gpt-neox-20b's, as MPT used
# (empirical.prepare_data_dir's docstring); 50,277 tokens
NEOX_VOCAB = 50277


def plan(notebook: str, spec, world: World) -> list[TrainingRunPlan]:
    """empirical: one plan per grid point (noise replicates fold into their point's ``count``)."""
    if notebook != "empirical":
        return []
    grid = spec.grid(0)
    vocab = NEOX_VOCAB if spec.needs_data_dir else spec.vocab_size
    plans, index = [], {}
    for run in plan_grid(grid, vocab):
        if run.skipped:
            continue
        key = (run.size, run.target_ratio)
        if key in index:
            old = plans[index[key]]
            plans[index[key]] = run_plan(old.name, old.model, old.config["train"], count=old.count + 1,
                                         config=old.config, note="with noise replicates")
            continue
        size = grid.size(run.size)
        train = {"max_steps": run.steps, "global_batch_size": size.global_batch_size,
                 "micro_batch_size": size.micro_batch_size or size.global_batch_size // world.size,
                 "optimizer": "adamw", "lr": run.lr, "weight_decay": grid.weight_decay,
                 "weight_decay_scaling": "schedule", "precision": grid.precision, "parallelism": grid.parallelism}
        cost = gpt_cost(gpt_config(size, grid, vocab), grid.seq_len, name=size.name)
        index[key] = len(plans)
        plans.append(run_plan(f"{run.size}-r{run.target_ratio:g}", cost, train, config={"train": train}))
    return plans


def requirements(notebook: str, spec) -> list[DataRequirement]:
    """empirical at full scale: <data_dir>/tokenizer, train/ and val/ (empirical.prepare_data_dir)."""
    if notebook != "empirical" or not spec.needs_data_dir:
        return []
    return [DataRequirement("tokenizer", "tokenizer", "tokenizer"), DataRequirement("train", "dir", "training text"),
            DataRequirement("val", "dir", "held-out text")]
