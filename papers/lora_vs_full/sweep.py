"""The sweep of "LoRA Learns Less and Forgets Less" (Biderman et al. 2024): many finetuning runs of one
base model, their results as tidy tables, the best learning rate per configuration.

    specs = {run_name(task, method, train): FinetuneRunSpec(...), ...}
    launch(specs, out_dir, nproc_per_node=1)             # finished runs with the same spec are kept
    evals = results_frame(out_dir, specs)                  # one row per (run, evaluated step)
    best = best_lr(evals)                                  # the LR with the lowest final target loss
    spectra = spectra_frame(out_dir, specs)                # one row per (run, step, matrix)
    models = final_benchmark_models(best, out_dir, base, ["math-ift"], ["full"])
    scores = final_benchmark_scores(check, models, folder) # harness-scored benchmarks, one row per model

A condition may set its own LR grids, train fields (batch, schedule, weight decay), duration mode and
spectral steps (`condition_overrides`, read through condition_sweep), as the paper's four settings do.

A run is one papers.lora_vs_full.finetune.finetune_main call in out_dir/<run name>; under torchrun when
nproc_per_node * nnodes > 1. The step-0 row of each condition is the base model itself
(finetune.evaluate_base), shared by all its runs.
"""
from __future__ import annotations

import json
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from papers.lora_vs_full.base import load_base
from papers.lora_vs_full.finetune import (
    FINAL_FILE,
    MERGED_DIR,
    SPEC_FILE,
    BenchmarkEval,
    FinetuneRunSpec,
    MethodSpec,
    evaluate_base,
    read_run,
)
from papers.lora_vs_full.tasks import ConditionSpec
from shared.eval.benchmark_fixtures import write_fixtures
from shared.eval.formats import read_gsm8k
from shared.train import run_training

MODULE_KIND = {"q_proj": "attention", "k_proj": "attention", "v_proj": "attention", "o_proj": "attention",
               "gate_proj": "mlp", "up_proj": "mlp", "down_proj": "mlp"}


def run_name(task: Mapping, method: Mapping, train: Mapping, tag: str = "") -> str:
    """A folder name that says what a run is, e.g. "math-ift_lora_r8_all_lionw_lr0.003"."""
    m = MethodSpec(**method)
    extra = "".join(f"_{k}{train[k]:g}" for k in ("weight_decay",) if train.get(k))
    extra += f"_drop{m.dropout:g}" if m.dropout else ""
    name = f"{task['domain']}-{task['regime']}_{m.label}_{train.get('optimizer', 'adamw')}_lr{train['lr']:g}{extra}"
    return name + (f"_{tag}" if tag else "")


def _same_spec(run_dir: Path, spec: FinetuneRunSpec) -> bool:
    path = run_dir / SPEC_FILE
    return path.exists() and json.loads(path.read_text()) == spec.to_dict()


def launch(specs: Mapping[str, FinetuneRunSpec], out_dir: str | Path, nproc_per_node: int = 1, nnodes: int = 1,
           rerun: bool = False) -> list[str]:
    """Run every spec in out_dir/<name>. A finished run with an identical spec is kept, an unfinished one
    resumes from its latest checkpoint (if it wrote any); a run_dir of another spec, or every run_dir
    with rerun, is cleared first. Returns the names that ran."""
    out_dir = Path(out_dir)
    ran = []
    for name, spec in specs.items():
        run_dir = out_dir / name
        same = _same_spec(run_dir, spec)
        if same and not rerun and (run_dir / FINAL_FILE).exists():
            continue
        if run_dir.exists() and (rerun or not same):
            shutil.rmtree(run_dir)
        run_training("papers.lora_vs_full.finetune:finetune_main", spec.to_dict(), run_dir=run_dir,
                     nproc_per_node=nproc_per_node, nnodes=nnodes)
        ran.append(name)
    return ran


def _describe(spec: dict) -> dict:
    task, method, train = spec["task"], MethodSpec(**spec["method"]), spec["train"]
    batch = train.get("global_batch_size") or train.get("micro_batch_size") or 1
    return {"condition": f"{task['domain']}-{task['regime']}", "domain": task["domain"], "regime": task["regime"],
            "method": method.method, "config": method.label, "rank": method.rank if method.method == "lora" else None,
            "targets": method.targets if method.method == "lora" else None,
            "optimizer": train.get("optimizer", "adamw"),
            "lr": float(train["lr"]), "weight_decay": float(train.get("weight_decay", 0.0)),
            "dropout": method.dropout, "batch_size": batch, "seq_len": task.get("max_len")}


def _metrics(record: Mapping) -> dict:
    out = {}
    for key, value in record.items():
        if "/" in key:                       # "target/loss" -> "target_loss", "source/facts_acc" -> ...
            group, name = key.split("/", 1)
            out[f"{group}_{name}"] = value
    return out


def results_frame(out_dir: str | Path, names, base_metrics: bool = True) -> pd.DataFrame:
    """One row per (run, evaluated step): the run's description, step, samples (training examples) seen
    (batch_size counts rows, packed sequences of packing_ratio examples where the task packs) and every eval
    metric (target_loss, source_loss, source_facts_acc, ...), plus the final generation metrics as
    columns final_*. base_metrics adds the step-0 rows of runs that did not evaluate at start."""
    out_dir = Path(out_dir)
    rows, base_cache = [], {}
    for name in names:
        res = read_run(out_dir / name)
        desc = {"run": name, **_describe(res.spec)}
        per_step = desc["batch_size"] * (res.spec["task"].get("packing_ratio") or 1)
        final = {f"final_{k}": v for k, v in res.final.items() if isinstance(v, (int, float))}
        steps = {r["step"] for r in res.evals}
        evals = list(res.evals)
        if base_metrics and 0 not in steps:
            key = json.dumps([res.spec["base"], res.spec["task"]], sort_keys=True)
            if key not in base_cache:
                base_cache[key] = evaluate_base(res.spec)
            evals.insert(0, {"step": 0, **base_cache[key]})
        for r in evals:
            rows.append({**desc, "step": r["step"], "samples": r["step"] * per_step, **_metrics(r), **final})
    return pd.DataFrame(rows)


def one_row_per_duration(evals: pd.DataFrame, sweep: Mapping) -> pd.DataFrame:
    """evals with, for conditions that train one run per duration ("separate"), only each run's own final
    evaluation (and the base model's step 0): the rows a learning / forgetting curve is drawn from."""
    separate = evals["condition"].map(lambda c: duration_mode_of(sweep, c) == "separate")
    return evals[~separate | (evals["step"] == 0) | (evals["step"] == evals.groupby("run")["step"].transform("max"))]


def extra_forgetting(reference: pd.DataFrame, other: pd.DataFrame) -> float | None:
    """How much more `other` forgets than `reference` at matched learning (the paper's one learning-forgetting
    curve, Fig. 4): reference's (target_loss, source_loss) points, sorted by target loss and linearly
    interpolated, read at each of other's points inside reference's target-loss range; the mean of other's
    source_loss minus that. Rows: one condition's evaluated points (step > 0) of each side, every LR and
    duration. None when no point of other lies inside reference's range."""
    ref = reference.sort_values("target_loss")
    inside = other[(other["target_loss"] >= ref["target_loss"].min()) & (other["target_loss"] <= ref["target_loss"].max())]
    if inside.empty:
        return None
    at = np.interp(inside["target_loss"], ref["target_loss"], ref["source_loss"])
    return float(np.mean(inside["source_loss"].to_numpy() - at))


def best_lr(evals: pd.DataFrame, metric: str = "target_loss", lower_is_better: bool = True,
            group: tuple[str, ...] = ("condition", "config", "optimizer", "weight_decay", "dropout")) -> pd.DataFrame:
    """Per configuration, the row of the LR that is best on `metric` at that run's last step (the
    paper's "exhaustive learning rate sweep for each method", reduced to the LRs given)."""
    last = evals.loc[evals.groupby("run")["step"].idxmax()]
    order = last.sort_values(metric, ascending=lower_is_better)
    return order.groupby(list(group), dropna=False).head(1).reset_index(drop=True)


def layer_of(name: str) -> int | None:
    m = re.search(r"layers\.(\d+)\.", name)
    return int(m.group(1)) if m else None


def spectra_frame(out_dir: str | Path, names) -> pd.DataFrame:
    """One row per (run, step, matrix): delta / base / random rank for the explained-variance fraction,
    relative ranks, the module (q_proj ...), its kind (attention / mlp) and layer."""
    rows = []
    for name in names:
        res = read_run(Path(out_dir) / name)
        desc = {"run": name, **_describe(res.spec)}
        for snap in res.spectra:
            for r in snap["rows"]:
                module = r["name"].split(".")[-1]
                rows.append({**desc, "step": snap["step"], "matrix": r["name"], "module": module,
                             "kind": MODULE_KIND.get(module), "layer": layer_of(r["name"]),
                             **{k: v for k, v in r.items() if k != "name"}})
    return pd.DataFrame(rows)


def make_spec(base: str, task: Mapping, method: Mapping, train: Mapping, **kwargs) -> FinetuneRunSpec:
    """A FinetuneRunSpec with validated task and method (ConditionSpec / MethodSpec round trips)."""
    return FinetuneRunSpec(base=str(base), task=ConditionSpec.from_dict(dict(task)).to_dict(),
                        method=MethodSpec(**method).to_dict(), train=dict(train), **kwargs)


# ------------------------------------------------------------------------------------------ planning
CONDITION_KEYS = ("full_lrs", "lora_lrs", "duration_mode", "spectral_steps")


def condition_sweep(sweep: Mapping, condition: str) -> dict:
    """The sweep as one condition runs it: `condition_overrides[condition]` replaces the LR grids,
    duration_mode and spectral_steps it gives and updates the shared `train` fields with its own
    (batch size, schedule, weight decay of that condition)."""
    over = sweep.get("condition_overrides", {}).get(condition) or {}
    out = {**sweep, **{k: over[k] for k in CONDITION_KEYS if over.get(k) is not None}}
    out["train"] = {**sweep["train"], **(over.get("train") or {})}
    return out


def duration_mode_of(sweep: Mapping, condition: str) -> str:
    """"along" (one run evaluated at every duration) or "separate" (a run per duration) for a condition."""
    return condition_sweep(sweep, condition).get("duration_mode", "along")


def generation_options(sweep: Mapping, data_dir: str | None = None) -> dict:
    """generation_metrics / evaluate_merged keywords of the sweep's `generation_eval` (none: greedy,
    zero-shot): the first gsm8k_shots problems of data_dir/gsm8k_fewshot_path as worked examples, the
    number of code samples per problem and their temperature."""
    gen = sweep.get("generation_eval")
    if not gen:
        return {}
    out = {"code_samples": gen.get("code_samples", 1), "code_temperature": gen.get("code_temperature", 0.0)}
    shots = gen.get("gsm8k_shots", 0)
    if shots:
        out["fewshot"] = read_gsm8k(Path(data_dir) / gen["gsm8k_fewshot_path"])[:shots]
    return out


def condition_task(sweep: Mapping, condition: str, data_dir: str | None = None) -> dict:
    """ConditionSpec fields of "<domain>-<regime>": the sweep's common `task` with its `task_overrides`
    (and data_dir, where the task reads files)."""
    domain, regime = condition.split("-")
    task = {**sweep["task"], **sweep.get("task_overrides", {}).get(condition, {}), "domain": domain,
            "regime": regime}
    if data_dir is not None:
        task["data_dir"] = str(data_dir)
    return ConditionSpec.from_dict(task).to_dict()


def _spec(sweep: Mapping, base: str, condition: str, method: dict, lr: float, steps: int, eval_steps,
          train_extra: Mapping | None = None, save_merged: bool = False) -> tuple[str, FinetuneRunSpec]:
    task = condition_task(sweep, condition, sweep.get("data_dir"))
    train = {**sweep["train"], **(train_extra or {}), "lr": lr, "max_steps": steps}
    spec = make_spec(base, task, method, train, eval_steps=[s for s in eval_steps if s < steps],
                     eval_at_start=False, spectral_steps=[s for s in sweep.get("spectral_steps", []) if s <= steps],
                     keep_spectra=sweep.get("keep_spectra", False), max_new_tokens=sweep.get("max_new_tokens", 128),
                     save_merged=save_merged, seed=sweep.get("seed", 0))   # the training seed
    tag = f"d{steps}" if sweep.get("duration_mode") == "separate" else ""
    return run_name(task, spec.method, train, tag), spec


def durations_of(sweep: Mapping, condition: str) -> list[int]:
    """Training durations (optimizer steps) of a condition: durations_by_condition, else durations."""
    return sorted(sweep.get("durations_by_condition", {}).get(condition, sweep["durations"]))


def _durations(sweep: Mapping, condition: str) -> list[tuple[int, list[int]]]:
    """(max_steps, eval_steps) of each run of one configuration: one run evaluated along the way
    ("along"), or one run per duration with its own schedule ("separate", as the paper)."""
    durations = durations_of(sweep, condition)
    if duration_mode_of(sweep, condition) == "separate":
        return [(d, []) for d in durations]
    return [(durations[-1], durations[:-1])]


def plan_sweep(sweep: Mapping, base: str, data_dir: str | None = None) -> dict[str, FinetuneRunSpec]:
    """The LR sweep: every condition x {full, the main LoRA config} x its LRs x durations; runs of
    the conditions in sweep["save_merged"] keep their merged model (for generation metrics).
    data_dir: where a files-source task reads its data (full scale)."""
    sweep = {**sweep, "data_dir": data_dir}
    specs = {}
    for condition in sweep["conditions"]:
        csweep = condition_sweep(sweep, condition)
        for method, lrs in ((dict(method="full"), csweep["full_lrs"]),
                            (dict(method="lora", **sweep["lora_main"]), csweep["lora_lrs"])):
            for lr in lrs:
                for steps, evals in _durations(csweep, condition):
                    name, spec = _spec(csweep, base, condition, method, lr, steps, evals,
                                       save_merged=condition in sweep.get("save_merged", ()))
                    specs[name] = spec
    return specs


def plan_variants(sweep: Mapping, base: str, best: pd.DataFrame | None = None,
                  data_dir: str | None = None) -> dict[str, FinetuneRunSpec]:
    """The other LoRA configurations (ranks x targets) on the variant conditions, each over the same LR
    grid as the main LoRA config (sweep["lora_lrs"]), so every compared configuration gets its own best
    LR from one grid; and the optimizer check if given: the other optimizer, full and LoRA, each over its
    own grid (check["full_lrs"], check["lora_lrs"]) of as many LRs as the main sweep's.
    `best` is accepted for callers of the earlier signature and not used."""
    sweep = {**sweep, "data_dir": data_dir}
    specs = {}
    for condition in sweep.get("variant_conditions", []):
        csweep = condition_sweep(sweep, condition)
        for variant in sweep.get("lora_variants", []):
            for lr in csweep["lora_lrs"]:
                for steps, evals in _durations(csweep, condition):
                    name, spec = _spec(csweep, base, condition, dict(method="lora", **variant), lr, steps, evals,
                                       save_merged=condition in sweep.get("save_merged", ()))
                    specs[name] = spec
    check = sweep.get("optimizer_check")
    if check:
        extra = {"optimizer": check["optimizer"], "betas": check["betas"]}
        csweep = condition_sweep(sweep, check["condition"])
        for method, lrs in ((dict(method="full"), check["full_lrs"]),
                            (dict(method="lora", **sweep["lora_main"]), check["lora_lrs"])):
            for lr in lrs:
                for steps, evals in _durations(csweep, check["condition"]):
                    name, spec = _spec(csweep, base, check["condition"], method, lr, steps, evals, train_extra=extra)
                    specs[name] = spec
    return specs


# ------------------------------------------------------------------------------- benchmarks at the end
def final_benchmark_models(best: pd.DataFrame, runs_dir: str | Path, base: str, conditions, configs) -> dict[str, Path]:
    """{label: transformers folder} of the base and of the merged model of each condition's best run of each
    config (rows of best_lr; runs saved with save_merged), labelled "<condition>/<config>"."""
    models = {"base": Path(base)}
    for condition in conditions:
        for config in configs:
            rows = best[(best["condition"] == condition) & (best["config"] == config)]
            if not rows.empty:
                models[f"{condition}/{config}"] = Path(runs_dir) / rows.iloc[0]["run"] / MERGED_DIR
    return models


def final_benchmark_scores(check: Mapping, models: Mapping[str, str | Path], folder: str | Path,
                           data_dir: str | None = None, benchmarks_path: str = "benchmarks",
                           batch_size: int = 16) -> pd.DataFrame:
    """One row per model: the forgetting benchmarks of scales.FinalBenchmarks `check` ({task}_acc,
    {task}_acc_norm, benchmarks_mean), scored by finetune.BenchmarkEval (lm-evaluation-harness) on each
    transformers folder of `models`. With check["fixture_rows"] the fixture files are written under
    `folder` first; otherwise data_dir/benchmarks_path is read."""
    tasks = tuple(check["tasks"])
    if check.get("fixture_rows"):
        source = write_fixtures(Path(folder), tasks, rows=check["fixture_rows"])
    elif data_dir is not None:
        source = Path(data_dir) / benchmarks_path
    else:
        raise ValueError("final_benchmarks without fixture_rows reads data_dir/benchmarks_path: give data_dir")
    rows = []
    for label, path in models.items():
        model, tok = load_base(path)
        scores = BenchmarkEval(tasks, str(source), tok, batch_size, check.get("limit"))(model.eval())
        rows.append({"model": label, **scores})
    return pd.DataFrame(rows)
