"""Timing MLM training steps of several models on the same batch (MosaicBERT's unpadding; the
padding_throughput notebook and benchmarks/bert_unpadding.py).

    batch = padded_mlm_batch(padding=0.5, batch=16, seq=128, vocab=30522)
    times = time_training_steps({"padded": m1, "unpadded": m2}, batch, rounds=9)
    times["padded"]["wall_s"], times["padded"]["cpu_s"]                              # minima per step

    models = padding_models(spec, device)                 # padded / unpadded (same weights) / transformers
    rows = padding_sweep(spec, models, seed=0)            # one row per (padding, model)

A step is forward + backward + AdamW. Rounds interleave the models, so load from other processes
hits them alike, and the minimum per model over rounds is kept: noise (other jobs, cache misses,
interrupts) only ever adds time to a step, so the fastest round is the closest to its own cost
(the usual rule for micro-benchmarks). Each step's CPU time of this process is
recorded too: on a machine shared with other jobs, wall-clock moves with the neighbours' load,
CPU-seconds much less (with one thread, CPU time ~ the step's own compute time). Models take ``(input_ids, attention_mask,
labels=...)`` and return an object with ``.loss`` (ours), or are transformers models (keyword call).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from shared.models.bert import BertForMaskedLM
from shared.models.bert_hf import mlm_to_hf
from shared.pipelines.mlm_pretrain import bert_config
from shared.utils.config import StrictConfig


def padding_lengths(padding: float, batch: int, seq: int) -> torch.Tensor:
    """Row lengths spread evenly in [max(4, seq (1 - 2 padding)), seq]: mean ~ seq (1 - padding)
    for padding <= 0.5; above that, lengths fall evenly from seq (1 - padding) down to 4."""
    if not 0.0 <= padding < 1.0:
        raise ValueError(f"padding must be in [0, 1), got {padding}")
    if padding <= 0.5:
        lo, hi = max(4.0, seq * (1 - 2 * padding)), float(seq)
    else:
        lo, hi = 4.0, max(4.0, 2 * seq * (1 - padding) - 4.0)
    return torch.linspace(lo, hi, batch).round().long()


def padded_mlm_batch(padding: float, batch: int, seq: int, vocab: int, rate: float = 0.15, mask_id: int = 4,
                     seed: int = 0) -> dict[str, torch.Tensor]:
    """A random MLM batch with the given padding fraction: input_ids, attention_mask (long), labels."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (batch, seq), generator=g)
    mask = torch.arange(seq)[None, :] < padding_lengths(padding, batch, seq)[:, None]
    selected = mask & (torch.rand(batch, seq, generator=g) < rate)
    return {"input_ids": torch.where(selected, torch.full_like(ids, mask_id), ids), "attention_mask": mask.long(),
            "labels": torch.where(selected, ids, torch.full_like(ids, -100))}


def _step(model, opt, batch) -> None:
    if getattr(model, "config", None) is not None and hasattr(model, "base_model_prefix"):   # transformers
        loss = model(**batch).loss
    else:
        loss = model(batch["input_ids"], batch["attention_mask"], labels=batch["labels"]).loss
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


def time_training_steps(models: dict, batch: dict[str, torch.Tensor], rounds: int = 5,
                        warmup: int = 1) -> dict[str, dict[str, float]]:
    """{name: {"wall_s", "cpu_s"}}: minimum over ``rounds`` of the wall-clock and of the process CPU
    seconds of one training step (each minimum taken separately)."""
    opts = {k: torch.optim.AdamW(m.parameters(), lr=1e-4) for k, m in models.items()}
    wall: dict[str, list[float]] = {k: [] for k in models}
    cpu: dict[str, list[float]] = {k: [] for k in models}
    for r in range(warmup + rounds):
        for name, model in models.items():
            dev = next(model.parameters()).device
            b = {k: v.to(dev) for k, v in batch.items()}
            sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
            sync()
            t0, c0 = time.perf_counter(), time.process_time()
            _step(model, opts[name], b)
            sync()
            if r >= warmup:
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
    return {k: {"wall_s": min(wall[k]), "cpu_s": min(cpu[k])} for k in models}


@dataclass(frozen=True)
class PaddingThroughputSpec(StrictConfig):
    """The padding_throughput notebook: one training step of an encoder, padded against unpadded
    (and transformers' BertForMaskedLM with ``with_hf``), on batches of each padding fraction.
    model: a bert flavour name or BertConfig fields (vocab_size and max_seq_len come from here)."""
    model: str | dict[str, Any]
    vocab_size: int
    seq_len: int
    micro_batch_size: int
    paddings: tuple[float, ...]
    rounds: int = 5
    with_hf: bool = True

    def __post_init__(self):
        bert_config(self.model)


def padding_models(spec: PaddingThroughputSpec, device: str | torch.device) -> dict[str, nn.Module]:
    """{"padded", "unpadded"[, "transformers"]}: the same weights, no dropout, on ``device``."""
    base = bert_config(spec.model, vocab_size=spec.vocab_size, max_seq_len=spec.seq_len, dropout=0.0,
                       attn_dropout=0.0)
    padded = BertForMaskedLM(base).to(device)
    unpadded = BertForMaskedLM(dataclasses.replace(base, unpad=True)).to(device)
    unpadded.load_state_dict(padded.state_dict())
    models = {"padded": padded, "unpadded": unpadded}
    if spec.with_hf:
        models["transformers"] = mlm_to_hf(padded)
    return models


def padding_sweep(spec: PaddingThroughputSpec, models: dict[str, nn.Module], seed: int = 0) -> list[dict[str, Any]]:
    """Rows {"padding" (realised fraction), "model", "wall_s", "cpu_s", "real_tokens_per_s",
    "real_tokens_per_cpu_s"}: the fastest of ``spec.rounds`` training steps per model at each padding."""
    rows = []
    for p in spec.paddings:
        batch = padded_mlm_batch(p, spec.micro_batch_size, spec.seq_len, spec.vocab_size, seed=seed)
        real = int(batch["attention_mask"].sum())
        for name, t in time_training_steps(models, batch, rounds=spec.rounds).items():
            rows.append({"padding": 1 - real / batch["attention_mask"].numel(), "model": name, **t,
                         "real_tokens_per_s": real / t["wall_s"], "real_tokens_per_cpu_s": real / t["cpu_s"]})
    return rows
