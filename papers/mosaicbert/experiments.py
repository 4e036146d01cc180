"""MosaicBERT's experiments on the shared MLM pipeline: the Pareto grid (BERT and MosaicBERT at two
sizes, every checkpoint finetuned) and the component ablation (MosaicBERT with one component removed).

    spec = scales.NOTEBOOKS["pareto"].build("smoke")
    rows, histories = pareto_runs(spec, out_dir, tokenizer, tasks, seed=0)
    table = ablation_runs(ablation_spec, out_dir, tokenizer, tasks, seed=0, rate="tokens_per_cpu_s")
"""
from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from shared.data.mlm import MaskingSchedule
from shared.eval.glue import Task, finetune_tasks, glue_average
from shared.pipelines.mlm_pretrain import (
    DownstreamSpec,
    MLMDataSpec,
    MLMPretrainConfig,
    as_encoder_mlm,
    bert_config,
    build_mlm_model,
    check_model_spec,
    model_with,
    pretrain_and_finetune,
)
from shared.train.config import TrainConfig
from shared.train.metrics import History
from shared.train.process_clock import read_process_time
from shared.utils.config import StrictConfig

# Component ablation: MosaicBERT with one component removed at a time (model switches, or the masking rate).
ABLATIONS: dict[str, dict[str, Any]] = {
    "MosaicBERT": {}, "- ALiBi": {"alibi": False}, "- GLU": {"glu": False}, "- unpadding": {"unpad": False},
    "- low-precision LN": {"low_precision_norm": False}, "- 30% masking": {"mask_rate": 0.15}}


@dataclass(frozen=True)
class ParetoSpec(StrictConfig):
    """The pareto notebook. ``models``: arch -> size -> model (a bert flavour name, {"flavour": ...,
    **fields}, BertConfig fields, or {"transformers": config_dir, **fields} for transformers' own
    BertForMaskedLM, shared.pipelines.mlm_pretrain); ``mask_rates``: arch -> constant masking rate; ``reference``:
    size -> the randomly initialised encoder finetuned as the "no pretraining" line (its keys are
    the sizes, in order). ``train`` is the trainer recipe (max_steps, log_every = eval interval);
    ``checkpoints`` evenly spaced checkpoints are finetuned on ``eval``. ``pretrain_seeds``: None
    pretrains each model once with the notebook's seed; a list pretrains it once per entry (offsets
    added to the notebook's seed)."""
    models: dict[str, dict[str, Any]]
    mask_rates: dict[str, float]
    reference: dict[str, Any]
    data: MLMDataSpec
    train: TrainConfig
    micro_batch_size: int
    checkpoints: int
    eval: DownstreamSpec
    eval_samples: int | None = None
    pretrain_seeds: tuple[int, ...] | None = None
    needs_data_dir: bool = False

    def __post_init__(self):
        for arch, by_size in self.models.items():
            if sorted(by_size) != sorted(self.reference):
                raise ValueError(f"models[{arch!r}] has sizes {sorted(by_size)}; reference has {sorted(self.reference)}")
            if arch not in self.mask_rates:
                raise ValueError(f"no mask_rates entry for arch {arch!r}")
            for model in by_size.values():
                check_model_spec(model)
        for model in self.reference.values():
            check_model_spec(model)

    @property
    def sizes(self) -> list[str]:
        return list(self.reference)


@dataclass(frozen=True)
class AblationSpec(StrictConfig):
    """The ablation notebook: ``model`` is full MosaicBERT (flavour or fields) trained at ``mask_rate``;
    each name in ``ablations`` (keys of ABLATIONS) removes one component."""
    model: str | dict[str, Any]
    mask_rate: float
    ablations: tuple[str, ...]
    data: MLMDataSpec
    train: TrainConfig
    micro_batch_size: int
    eval: DownstreamSpec
    eval_samples: int | None = None
    needs_data_dir: bool = False

    def __post_init__(self):
        bert_config(self.model)
        unknown = sorted(set(self.ablations) - set(ABLATIONS))
        if unknown:
            raise ValueError(f"unknown ablation(s) {unknown}; valid: {list(ABLATIONS)}")


def _run_key(arch: str, size: str, seed: int | None) -> tuple:
    return (arch, size) if seed is None else (arch, size, seed)


def _run_name(key: tuple) -> str:
    return "_".join(key[:2]) + (f"_seed{key[2]}" if len(key) > 2 else "")


def pareto_run_dir(out_dir: str | Path, arch: str, size: str, pretrain_seed: int | None = None) -> Path:
    """The pretraining run dir of ``arch`` at ``size`` in pareto_runs (``pretrain_seed``: under spec.pretrain_seeds)."""
    return Path(out_dir) / "pretrain" / _run_name(_run_key(arch, size, pretrain_seed))


def ablation_run_dir(out_dir: str | Path, variant: str) -> Path:
    """The pretraining run dir of an ablation variant (a key of ABLATIONS) in ablation_runs."""
    return Path(out_dir) / "pretrain" / variant.replace("- ", "no_").replace(" ", "_").replace("%", "pct")


def pareto_runs(spec: ParetoSpec, out_dir: str | Path, tokenizer, tasks: Sequence[Task], seed: int = 0, *,
                nproc_per_node: int = 1, nnodes: int = 1) -> tuple[list[dict[str, Any]], dict[tuple, History]]:
    """Pretrain every arch at every size (run dirs ``out_dir/pretrain/<arch>_<size>``, with
    ``_seed<s>`` appended under ``spec.pretrain_seeds``), finetune every checkpoint, and finetune a
    randomly initialised encoder of each size (arch "no pretraining", step 0). Returns (rows {"arch",
    "size", ("pretrain_seed",) "step", "elapsed_s", "cpu_s", "mlm15_loss", "task", "seed", metrics...,
    "score"}, {(arch, size) or (arch, size, pretrain seed): History})."""
    every = spec.train.max_steps // spec.checkpoints
    seeds = [None] if spec.pretrain_seeds is None else [seed + s for s in spec.pretrain_seeds]
    options = spec.eval.finetune_options()
    rows, histories = [], {}
    for size in spec.sizes:
        for arch, by_size in spec.models.items():
            for s in seeds:
                train = dataclasses.replace(spec.train, seed=seed if s is None else s, eval_every=spec.train.log_every,
                                            checkpoint_every=every, keep_last_n=None)
                config = MLMPretrainConfig(model=by_size[size],
                                           masking=MaskingSchedule("constant", spec.mask_rates[arch]), train=train,
                                           data=spec.data, micro_batch_size=spec.micro_batch_size,
                                           eval_samples=spec.eval_samples)
                key = _run_key(arch, size, s)
                histories[key], runs = pretrain_and_finetune(
                    config, pareto_run_dir(out_dir, arch, size, s), tokenizer, tasks, spec.eval.finetune,
                    seeds=spec.eval.seeds, nproc_per_node=nproc_per_node, nnodes=nnodes, finetune_options=options)
                rows += [{"arch": arch, "size": size, **({} if s is None else {"pretrain_seed": s}), **r} for r in runs]
                print(arch, size, "done" if s is None else f"seed {s} done")
        fresh = as_encoder_mlm(build_mlm_model(spec.reference[size], len(tokenizer)))
        for r in finetune_tasks(fresh, tokenizer, tasks, spec.eval.finetune, seeds=spec.eval.seeds, **options):
            rows.append({"arch": "no pretraining", "size": size, "step": 0, "elapsed_s": 0.0, "cpu_s": 0.0,
                         "mlm15_loss": None, **r})
    return rows, histories


def mlm_curves(histories: dict[tuple, History], out_dir: str | Path, clock: str) -> pd.DataFrame:
    """Held-out MLM loss (at 15%) against pretraining time: rows {"arch", "size", ("pretrain_seed",)
    "step", "time_s", "mlm15_loss"}; ``clock`` "elapsed_s" (wall-clock) or "cpu_s" (process CPU seconds)."""
    curves = []
    for key, h in histories.items():
        arch, size = key[:2]
        times = ({r["step"]: r["elapsed_s"] for r in h.train} if clock == "elapsed_s"
                 else read_process_time(Path(out_dir) / "pretrain" / _run_name(key)))
        extra = {"pretrain_seed": key[2]} if len(key) > 2 else {}
        curves += [{"arch": arch, "size": size, **extra, "step": r["step"], "time_s": times[r["step"]],
                    "mlm15_loss": r["mlm15/loss"]} for r in h.eval if r["step"] in times]
    return pd.DataFrame(curves)


def train_throughput(run_dir: str | Path) -> dict[str, float]:
    """Median real tokens/s and samples/s over a run's train records (the first interval, which
    includes warm-up, left out when there are others), and real tokens per CPU-second of the
    training process over the same steps (steady on a shared CPU)."""
    records = History.from_run_dir(run_dir).train
    cpu = read_process_time(run_dir)
    out = {"elapsed_s": records[-1]["elapsed_s"], "cpu_s": cpu.get(records[-1]["step"])}
    first = records[0]
    records = records[1:] if len(records) > 1 else records
    out["tokens_per_s"] = statistics.median(r["tokens_per_s"] for r in records)
    out["samples_per_s"] = statistics.median(r["samples_per_s"] for r in records)
    if first["step"] in cpu and records[-1]["step"] in cpu and records[-1] is not first:
        out["tokens_per_cpu_s"] = ((records[-1]["tokens"] - first["tokens"])
                                   / (cpu[records[-1]["step"]] - cpu[first["step"]]))
    return out


def ablation_runs(spec: AblationSpec, out_dir: str | Path, tokenizer, tasks: Sequence[Task], seed: int = 0, *,
                  rate: str = "tokens_per_s", nproc_per_node: int = 1, nnodes: int = 1) -> pd.DataFrame:
    """Pretrain MosaicBERT and each ablation, finetune the final checkpoint (not the periodic ones kept for
    resuming); one row per variant with
    throughput (``rate``: "tokens_per_s" or "tokens_per_cpu_s"), MLM loss at 15%, downstream average
    and per task, and each against full MosaicBERT (the first variant)."""
    train = dataclasses.replace(spec.train, seed=seed, eval_every=spec.train.max_steps)
    rows = []
    for name in spec.ablations:
        change = dict(ABLATIONS[name])
        mask_rate = change.pop("mask_rate", spec.mask_rate)
        run_dir = ablation_run_dir(out_dir, name)
        config = MLMPretrainConfig(model=model_with(spec.model, **change), masking=MaskingSchedule("constant", mask_rate),
                                   train=train, data=spec.data, micro_batch_size=spec.micro_batch_size,
                                   eval_samples=spec.eval_samples)
        history, runs = pretrain_and_finetune(config, run_dir, tokenizer, tasks, spec.eval.finetune,
                                              seeds=spec.eval.seeds, nproc_per_node=nproc_per_node, nnodes=nnodes,
                                              finetune_options=spec.eval.finetune_options(), final_only=True)
        scores = glue_average(runs)
        rows.append({"variant": name, **train_throughput(run_dir), "mlm15_loss": history.eval[-1]["mlm15/loss"],
                     "downstream": scores["average"], **{f"task_{k}": v for k, v in scores["tasks"].items()}})
        print(rows[-1])
    table = pd.DataFrame(rows)
    table["throughput"] = table[rate]
    full = table.iloc[0]
    table["throughput_vs_mosaic"] = table.throughput / full.throughput
    table["downstream_vs_mosaic"] = table.downstream - full.downstream
    table["mlm15_loss_vs_mosaic"] = table.mlm15_loss - full.mlm15_loss
    return table


__all__ = ["ABLATIONS", "AblationSpec", "ParetoSpec", "ablation_run_dir", "ablation_runs", "mlm_curves",
           "pareto_run_dir", "pareto_runs", "train_throughput"]
