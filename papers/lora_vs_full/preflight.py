"""Preflight plans of the lora_vs_full notebooks (``python -m shared.preflight lora_vs_full``).

01_pretrain_base pretrains a small base at smoke / small scale and reads Llama-2-7B at full.
02_learning_forgetting: the LR sweep (condition x {full, main LoRA} x LR x duration), the LoRA
variants and the optimizer check (sweep.plan_sweep / plan_variants); the LRs of one configuration
fold into one line (``count``); a step is global_batch_size sequences of max_len tokens, packed sequences of
packing_ratio examples for code IFT at full (192 x 4096 tokens). 04: full finetuning of the best full run with each weight decay and dropout (its
duration is the sweep's best; the longest is planned). The models are transformers Llama models
(logits materialised by the loss); a LoRA base is frozen, in fp32 unless the run loads it in bf16.
"""
from __future__ import annotations

import importlib.util
from collections import Counter

from papers.lora_vs_full.finetune import MethodSpec
from papers.lora_vs_full.scales import NOTEBOOKS
from papers.lora_vs_full.sweep import condition_sweep, condition_task, durations_of, plan_sweep, plan_variants
from shared.eval.benchmarks import evaluation_file
from shared.models.flavours import resolve_model_config
from shared.preflight import DataRequirement, TrainingRunPlan, World, gpt_cost, run_plan, scale_of

DATA_DIR = "<data_dir>"             # a placeholder: the plans read only shapes and lengths
BASE_FOLDER = f"{DATA_DIR}/base"


def _base_config(scale: str):
    base = NOTEBOOKS["01_pretrain_base"].build(scale)
    return resolve_model_config(base.model, "gpt", vocab_size=base.vocab_size, max_seq_len=max(base.seq_len, 4096)), base


def _cost(cfg, seq_len: int, method: dict):
    lora = None if method["method"] == "full" else (method["rank"], method["targets"])
    return gpt_cost(cfg, seq_len, name="llama", lora=lora, materialised_logits=True)


def plan(notebook: str, spec, world: World) -> list[TrainingRunPlan]:
    """Every finetuning (or pretraining) run of ``notebook``'s preset ``spec``."""
    if notebook == "01_pretrain_base":
        if not spec.pretrain:
            return []
        cfg = resolve_model_config(spec.model, "gpt", vocab_size=spec.vocab_size, max_seq_len=spec.seq_len)
        return [run_plan("base", gpt_cost(cfg, spec.seq_len, name="base"), spec.train)]
    if notebook == "02_learning_forgetting":
        return _sweep_plans(spec)
    if notebook == "04_regularization_diversity":
        sweep = NOTEBOOKS["02_learning_forgetting"].build(scale_of(NOTEBOOKS[notebook], spec))
        cfg, _ = _base_config(scale_of(NOTEBOOKS[notebook], spec))
        csweep = condition_sweep(_sweep_dict(sweep), spec.condition)
        task = condition_task(csweep, spec.condition, DATA_DIR)
        steps = durations_of(csweep, spec.condition)[-1]
        train = {**csweep["train"], "lr": max(csweep["full_lrs"])}
        cost = _cost(cfg, task["max_len"], {"method": "full"})
        return [run_plan(f"{spec.condition}-full-wd{wd:g}", cost, {**train, "weight_decay": wd}, max_steps=steps,
                         note="the sweep's best LR and duration; the longest planned") for wd in spec.weight_decays] + \
               [run_plan(f"{spec.condition}-full-dropout{p:g}", cost, train, max_steps=steps,
                         note="the sweep's best LR and duration; the longest planned") for p in spec.dropouts]
    return []


def _sweep_plans(spec) -> list[TrainingRunPlan]:
    scale = scale_of(NOTEBOOKS["02_learning_forgetting"], spec)
    cfg, _ = _base_config(scale)
    sweep = _sweep_dict(spec)
    runs = {**plan_sweep(sweep, BASE_FOLDER, data_dir=DATA_DIR),
            **plan_variants(sweep, BASE_FOLDER, None, data_dir=DATA_DIR)}
    groups = Counter()
    first = {}
    for run in runs.values():
        key = (f"{run.task['domain']}-{run.task['regime']}", MethodSpec(**run.method).label,
               run.train.get("optimizer", "adamw"), run.train["max_steps"])
        groups[key] += 1
        first.setdefault(key, run)
    plans = []
    for key, n in groups.items():
        run = first[key]
        ratio = run.task.get("packing_ratio")
        packed = f"; packed, {ratio:g} examples per sequence" if ratio else ""
        plans.append(run_plan(f"{key[0]}-{key[1]}-{key[2]}-d{key[3]}", _cost(cfg, run.task["max_len"], run.method), run.train,
                              count=n, note=f"{n} LRs{packed}"))
    return plans


def _sweep_dict(spec) -> dict:
    """The sweep preset as plan_sweep reads it (the run directory is the launcher's to give)."""
    sweep = spec.to_dict()
    sweep["train"] = {k: v for k, v in sweep["train"].items() if k != "run_dir"}
    return sweep


def requirements(notebook: str, spec) -> list[DataRequirement]:
    """The base checkpoint (01) and each condition's training / test / source files and forgetting benchmark
    rows (02)."""
    if notebook == "01_pretrain_base" and not spec.pretrain:
        return [DataRequirement(spec.base_path, "hf_checkpoint", "the base model")]
    if notebook != "02_learning_forgetting" or spec.task.get("source") != "files":
        return []
    reqs, seen = [], set()
    for condition in spec.conditions:
        task = {**spec.task, **spec.task_overrides.get(condition, {})}
        for key, what in (("train_path", "training data"), ("test_path", "test set"), ("source_path", "held-out text")):
            path = task.get(key)
            if path and path not in seen:
                seen.add(path)
                kind = "jsonl" if path.endswith(".jsonl") else "json" if path.endswith(".json") else "dir"
                reqs.append(DataRequirement(path, kind, f"{condition} {what}"))
    gen = spec.generation_eval
    if gen is not None and gen.gsm8k_shots and gen.gsm8k_fewshot_path not in seen:
        reqs.append(DataRequirement(gen.gsm8k_fewshot_path, "jsonl", f"GSM8K {gen.gsm8k_shots}-shot examples"))
    return reqs + _benchmark_files(spec)


def _benchmark_files(spec) -> list[DataRequirement]:
    """The rows file of each forgetting benchmark the runs score at every evaluation (task.benchmarks under
    task.benchmarks_path, per condition; and final_benchmarks read from data_dir), so a missing one stops the
    launch instead of the first evaluation of the first run; the folder alone where lm-evaluation-harness is
    not installed (its task configs name the splits)."""
    wanted: dict[str, list[str]] = {}
    for condition in spec.conditions:
        task = {**spec.task, **spec.task_overrides.get(condition, {})}
        if task.get("benchmarks"):
            wanted.setdefault(task.get("benchmarks_path", "benchmarks"), []).extend(task["benchmarks"])
    final = spec.final_benchmarks
    if final is not None and not final.fixture_rows:
        wanted.setdefault(spec.task.get("benchmarks_path", "benchmarks"), []).extend(final.tasks)
    harness = importlib.util.find_spec("lm_eval") is not None
    reqs = []
    for folder, names in wanted.items():
        reqs.append(DataRequirement(folder, "dir", "forgetting benchmark rows (HellaSwag, ARC-Challenge, WinoGrande)"))
        for name in dict.fromkeys(names) if harness else ():
            rows = f"{folder}/{evaluation_file(name)}"
            reqs.append(DataRequirement("|".join(rows + s for s in (".jsonl", ".json", ".parquet")), "file",
                                        f"{name} rows"))
    return reqs
