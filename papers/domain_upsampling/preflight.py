"""Preflight plans of the domain-upsampling notebooks (``python -m shared.preflight domain_upsampling``).

01_train trains, per seed, the baseline (every step on the base mix) and one branch per upsampling
fraction f (the last f T steps, resumed from the baseline's checkpoint; f = 1 trains from step 0)
and per ablated domain. 02_sweep and 03_ablation read 01_train's results and train nothing.
"""
from __future__ import annotations

import dataclasses
import importlib.util

from papers.domain_upsampling.pipeline import plan_branches
from shared.eval.benchmarks import evaluation_file
from shared.eval.gauntlet import tasks as gauntlet_tasks
from shared.models.flavours import resolve_model_config
from shared.preflight import DataRequirement, TrainingRunPlan, World, gpt_cost, run_plan


def plan(notebook: str, spec, world: World) -> list[TrainingRunPlan]:
    """01_train: the baseline and every branch, folded over the seeds (``count``)."""
    if notebook != "01_train":
        return []
    vocab = spec.data.tokenizer.vocab_size
    cfg = resolve_model_config(spec.model, "gpt", **({"vocab_size": vocab} if vocab else {}))
    cost = gpt_cost(cfg, spec.data.seq_len, name="decoder")
    total = spec.train.max_steps
    seeds = len(spec.seeds)
    note = "" if vocab else f"vocab {cfg.vocab_size}: the flavour's (the tokenizer comes from data_dir)"
    runs = [run_plan("baseline", cost, spec.train, count=seeds, note=note)]
    for branch in plan_branches(spec.fractions, spec.upsampled_mix, ablate=spec.ablate,
                                ablation_fraction=spec.ablation_fraction):
        steps = total - branch.start_step(total)
        runs.append(run_plan(f"branch {branch.name}", cost, spec.train, count=seeds, max_steps=steps,
                             note=f"resumes the baseline at step {branch.start_step(total)}"))
    return runs


def requirements(notebook: str, spec) -> list[DataRequirement]:
    """01_train at full scale: the tokenizer, each domain's text, the benchmark files (and the folder of
    the harness's and the Gauntlet's task rows), the comparison system's checkpoint."""
    if notebook != "01_train":
        return []
    reqs = []
    tokenizer = spec.data.tokenizer
    if tokenizer.path and "{data_dir}" in tokenizer.path:
        reqs.append(DataRequirement(tokenizer.path, "tokenizer", "tokenizer"))
    for name, stream in spec.data.streams.items():
        path = dataclasses.asdict(stream).get("path") if dataclasses.is_dataclass(stream) else None
        if path and "{data_dir}" in path:
            reqs.append(DataRequirement(path, "dir", f"{name} text"))
    for name, path in spec.eval.get("files", {}).items():
        if isinstance(path, str) and "{data_dir}" in path:
            reqs.append(DataRequirement(path, "jsonl", f"{name} benchmark"))
    folders = {spec.eval[k]["data_dir"] for k in ("harness", "gauntlet") if spec.eval.get(k)}
    for folder in sorted(f for f in folders if "{data_dir}" in f):
        reqs.append(DataRequirement(folder, "dir", "benchmark rows of the harness's tasks (MMLU, GSM8K, the Gauntlet)"))
    reqs += benchmark_files(spec.eval)
    return reqs + _reference(spec)


def benchmark_files(evals) -> list[DataRequirement]:
    """The rows file each benchmark and Gauntlet task is scored on (``.jsonl`` / ``.json`` / ``.parquet``), so a
    missing one stops the launch instead of the first evaluation; none where lm-evaluation-harness is not installed
    (its task configs name the splits), leaving the folder check."""
    if importlib.util.find_spec("lm_eval") is None:
        return []
    wanted: dict[str, list[str]] = {}
    if evals.get("harness"):
        wanted.setdefault(evals["harness"]["data_dir"], []).extend(evals["harness"]["tasks"])
    if evals.get("gauntlet"):
        g = evals["gauntlet"]
        only = g.get("only")
        wanted.setdefault(g["data_dir"], []).extend(
            t.benchmark for t in gauntlet_tasks(g.get("categories")) if only is None or t.name in only)
    reqs = []
    for folder, names in wanted.items():
        for name in dict.fromkeys(names):
            rows = f"{folder}/{evaluation_file(name)}"
            reqs.append(DataRequirement("|".join(rows + s for s in (".jsonl", ".json", ".parquet")), "file",
                                        f"{name} rows"))
    return reqs


def _reference(spec) -> list[DataRequirement]:
    reqs = []
    reference = spec.reference or {}
    if "{data_dir}" in reference.get("path", ""):
        reqs.append(DataRequirement(reference["path"], "hf_checkpoint", f"{reference['name']} (comparison system)"))
    return reqs
