"""Masked-language-model pretraining on the shared Trainer (MosaicBERT, masking-rate schedules).

    run_training("shared.train.mlm:pretrain_mlm", config, run_dir=..., nproc_per_node=8)

``config`` (JSON-able; what notebooks build from their presets):
    model:    BertConfig fields (alibi, glu, unpad, low_precision_norm, sizes...)
    train:    TrainConfig fields (max_steps, lr, betas, warmup_fraction, alpha_f, ...; not run_dir)
    masking:  MaskingSchedule fields, e.g. {"kind": "linear", "p_i": 0.3, "p_f": 0.15}
    data:     {"kind": "corpora", "corpora": [...], "vocab_size": V, "seq_len": S, "max_docs": N,
               "eval_docs": M, "tokenizer_seed": 0}                        (offline, smoke / small)
              {"kind": "cache", "train_dir": ..., "eval_dir": ..., "tokenizer_dir": ...} (full scale:
               folders written by shared.data.mlm_cache.prepare_mlm_cache, a saved tokenizer)
    micro_batch_size, eval_rate (0.15), eval_batch_size
The vocabulary size of the model is the tokenizer's (``model.vocab_size`` is overwritten).
Writes the Trainer's metrics.jsonl and checkpoints under run_dir, ``model_config.json``, and
``process_time.jsonl`` (the process CPU time of training, shared.train.process_clock).
"""
from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path
from typing import Any

import torch

from shared.data.mlm import MaskingSchedule, MLMBatches, SpecialIds, encode_for_mlm, fixed_rate_batches
from shared.models.bert import BertConfig, BertForMaskedLM
from shared.train import distributed as D
from shared.train.config import TrainConfig
from shared.train.process_clock import ProcessClock, read_process_time
from shared.train.trainer import Trainer

EVAL_RATE = 0.15


def mlm_loss(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, Any]]:
    """Trainer loss_fn: cross-entropy at the masked tokens; logs masked accuracy, the realised
    masking rate, and counts real (non-padding) tokens as the tokens of the batch."""
    out = model(batch["input_ids"], batch["attention_mask"], labels=batch["labels"])
    real = batch["attention_mask"].sum()
    with torch.no_grad():
        acc = (out.logits.argmax(-1) == out.labels).float().mean() if out.labels.numel() else torch.zeros(())
    return out.loss, {"masked_accuracy": acc, "mask_rate": out.labels.numel() / real.clamp(min=1),
                      "num_tokens": int(real)}


def mlm_evaluator(batches: list[dict[str, torch.Tensor]]):
    """eval fn(model) -> {"loss", "accuracy"}: token-weighted over fixed, pre-masked batches."""
    def mlm_eval(model) -> dict[str, float]:
        device = next(model.parameters()).device
        total = correct = count = 0.0
        for b in batches:
            out = model(b["input_ids"].to(device), b["attention_mask"].to(device), labels=b["labels"].to(device))
            n = out.labels.numel()
            total += float(out.loss) * n
            correct += float((out.logits.argmax(-1) == out.labels).sum())
            count += n
        return {"loss": total / max(count, 1), "accuracy": correct / max(count, 1)}
    return mlm_eval


def encoder_tokenizer(corpora: tuple[str, ...], vocab_size: int, seed: int = 0, max_docs: int | None = None):
    """A byte-level BPE with [MASK]/[CLS]/[SEP]/[PAD] trained on the offline corpora (cached)."""
    from shared.data.tokenizer import ENCODER_SPECIAL_TOKENS, corpus_tokenizer
    return corpus_tokenizer(list(corpora), vocab_size, seed=seed, max_docs=max_docs,
                            special_tokens=ENCODER_SPECIAL_TOKENS)


@functools.lru_cache(maxsize=4)
def _corpora_data(key: str):
    spec = json.loads(key)
    from shared.data.corpora import load_corpus
    tok = encoder_tokenizer(tuple(spec["corpora"]), spec["vocab_size"], spec.get("tokenizer_seed", 0),
                            spec.get("tokenizer_max_docs"))
    special = SpecialIds.of(tok)
    train, test = [], []
    for name in spec["corpora"]:
        train += load_corpus(name, "train", max_docs=spec.get("max_docs"), seed=spec.get("data_seed", 0))
        test += load_corpus(name, "test", max_docs=spec.get("eval_docs"), seed=spec.get("data_seed", 0))
    return tok, encode_for_mlm(train, tok, spec["seq_len"], special), encode_for_mlm(test, tok, spec["seq_len"], special)


def load_mlm_data(spec: dict[str, Any]):
    """(tokenizer, train rows, eval rows) for a data spec (see module docstring); rows are
    {"input_ids", "attention_mask"}. Offline corpora are tokenized once per process."""
    kind = spec.get("kind")
    if kind == "corpora":
        return _corpora_data(json.dumps(spec, sort_keys=True))
    if kind == "cache":
        from transformers import AutoTokenizer

        from shared.data.mlm_cache import load_mlm_cache
        tok = AutoTokenizer.from_pretrained(spec["tokenizer_dir"], local_files_only=True)
        return tok, load_mlm_cache(spec["train_dir"]), load_mlm_cache(spec["eval_dir"])
    raise ValueError(f"data.kind={kind!r}; valid choices: 'corpora', 'cache'")


def build_mlm_model(model_cfg: dict[str, Any], vocab_size: int) -> BertForMaskedLM:
    return BertForMaskedLM(BertConfig(**{**model_cfg, "vocab_size": vocab_size}))


def pretrain_mlm(config: dict[str, Any], run_dir: str) -> None:
    """Entry point (world size 1 in-process, or every torchrun rank): pretrain and checkpoint."""
    tok, train_rows, eval_rows = load_mlm_data(config["data"])
    special = SpecialIds.of(tok)
    model = build_mlm_model(config["model"], len(tok))
    tcfg = TrainConfig.from_dict({**config["train"], "run_dir": run_dir})
    rank, world = D.get_rank(), D.get_world_size()
    batches = MLMBatches(train_rows, config["micro_batch_size"], MaskingSchedule.from_dict(config["masking"]),
                         special, seed=tcfg.seed, rank=rank, world_size=world)
    n_eval = min(len(eval_rows["input_ids"]), config.get("eval_samples", 10**9))
    idx = torch.arange(n_eval)
    eval_data = {k: v[idx] for k, v in eval_rows.items()}
    evals = {"mlm15": mlm_evaluator(fixed_rate_batches(eval_data, config.get("eval_rate", EVAL_RATE), special,
                                                       config.get("eval_batch_size", 64)))}
    if rank == 0:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        (Path(run_dir) / "model_config.json").write_text(json.dumps(dataclasses.asdict(model.cfg), indent=1))
    Trainer(model, mlm_loss, batches, tcfg, eval_fns=evals,
            callbacks=[batches.progress_callback(), ProcessClock(run_dir)]).fit()


def load_pretrained(run_dir: str | Path, step: int | None = None) -> BertForMaskedLM:
    """The model of a pretraining run: its last checkpoint, or the one at ``step``."""
    from shared.train.checkpoint import latest_checkpoint, list_checkpoints, load_model_weights
    run_dir = Path(run_dir)
    cfg = BertConfig(**json.loads((run_dir / "model_config.json").read_text()))
    model = BertForMaskedLM(cfg)
    if step is None:
        path = latest_checkpoint(run_dir)
    else:
        path = next((p for p in list_checkpoints(run_dir) if p.name == f"step_{step:08d}"), None)
    if path is None:
        raise FileNotFoundError(f"no checkpoint{'' if step is None else f' at step {step}'} under {run_dir}")
    load_model_weights(path, model)
    return model


def checkpoint_steps(run_dir: str | Path) -> list[int]:
    from shared.train.checkpoint import list_checkpoints
    return [int(p.name.split("_")[-1]) for p in list_checkpoints(run_dir)]


def evaluate_checkpoints(run_dir: str | Path, tokenizer, tasks, finetune_cfg, seeds=(0,),
                         steps: list[int] | None = None) -> list[dict[str, Any]]:
    """Finetune the checkpoints of a pretraining run (all, or ``steps``) on ``tasks``.

    Rows {"step", "elapsed_s" (pretraining wall-clock to that step, eval and checkpoint time
    excluded), "cpu_s" (the same in process CPU seconds), "mlm15_loss" (eval at that step, if
    logged), "task", "seed", metrics..., "score"}."""
    from shared.eval.glue import finetune_tasks
    from shared.train.metrics import History
    history = History.from_run_dir(run_dir)
    elapsed = {r["step"]: r["elapsed_s"] for r in history.train}
    mlm = {r["step"]: r.get("mlm15/loss") for r in history.eval}
    cpu = read_process_time(run_dir)
    rows = []
    for step in steps if steps is not None else checkpoint_steps(run_dir):
        model = load_pretrained(run_dir, step)
        for r in finetune_tasks(model, tokenizer, tasks, finetune_cfg, seeds=seeds):
            rows.append({"step": step, "elapsed_s": elapsed.get(step), "cpu_s": cpu.get(step),
                         "mlm15_loss": mlm.get(step), **r})
    return rows


def train_throughput(run_dir: str | Path) -> dict[str, float]:
    """Median real tokens/s and samples/s over a run's train records (the first interval, which
    includes warm-up, left out when there are others), and real tokens per CPU-second of the
    training process over the same steps (steady on a shared CPU)."""
    import statistics
    from shared.train.metrics import History
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


def ensure_mlm_data(spec: dict[str, Any]) -> None:
    """Full scale: tokenize the raw corpus into the token caches a "cache" data spec names, once
    (needs "source_train", "source_eval", "seq_len"). Offline corpora need nothing."""
    if spec.get("kind") != "cache":
        return
    from transformers import AutoTokenizer

    from shared.data.mlm_cache import INDEX, prepare_mlm_cache
    for split in ("train", "eval"):
        if not (Path(spec[f"{split}_dir"]) / INDEX).exists():
            tok = AutoTokenizer.from_pretrained(spec["tokenizer_dir"], local_files_only=True)
            prepare_mlm_cache(spec[f"source_{split}"], tok, spec["seq_len"], spec[f"{split}_dir"])


def fill_data_dir(obj: Any, data_dir: str | None) -> Any:
    """A preset with "{data_dir}" in its strings replaced (full scale reads prepared data there);
    ValueError when a string needs it and data_dir is None."""
    if isinstance(obj, dict):
        return {k: fill_data_dir(v, data_dir) for k, v in obj.items()}
    if isinstance(obj, list):
        return [fill_data_dir(v, data_dir) for v in obj]
    if isinstance(obj, str) and "{data_dir}" in obj:
        if data_dir is None:
            raise ValueError(f"this scale reads {obj!r}: pass data_dir")
        return obj.replace("{data_dir}", data_dir)
    return obj
