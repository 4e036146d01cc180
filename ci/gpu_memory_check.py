#!/usr/bin/env python3
"""The largest decoder preset at its real width on one GPU: measured peak memory vs the preflight's estimate.

    python ci/gpu_memory_check.py                    # domain_upsampling 01_train at full (MPT-7B), 4 layers
    python ci/gpu_memory_check.py --layers 2 --steps 3 --json
    python ci/gpu_memory_check.py --device cpu --small   # checks the script on a CPU (no measurement there)

A full preset is sized by ``shared.preflight`` before launch; its ``fits`` is only as good as the memory
estimate. This takes the full preset's model (width, heads, vocabulary, sequence length), micro-batch,
precision, optimizer and activation checkpointing as they are, keeps ``--layers`` of its blocks so one GPU
holds the unsharded run, trains ``--steps`` steps through the shared ``Trainer`` (the code path of the
notebooks) on random tokens, and compares ``torch.cuda.max_memory_allocated`` with
``shared.preflight.memory_per_gpu`` for the same run at world size 1.

Exit status 1 when the measured peak exceeds the estimate by more than ``--tolerance`` (default 15%): then
the preflight under-counts and its ``fits`` would send a run out of memory. An estimate above the
measurement only wastes headroom, so it is reported, not failed. Needs torch and transformers only.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import warnings
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from shared.models.flavours import resolve_model_config  # noqa: E402
from shared.models.gpt import GPT  # noqa: E402
from shared.preflight import gpt_cost, memory_per_gpu, run_plan  # noqa: E402
from shared.train import TrainConfig, Trainer  # noqa: E402
from shared.train.lm import lm_loss  # noqa: E402

GIB = 2**30
# the preset's training keys the check keeps as they are (the rest: steps, batch, parallelism, logging, is ours)
KEPT_TRAIN_KEYS = ("optimizer", "lr", "betas", "eps", "weight_decay", "weight_decay_scaling", "decay_norm_and_bias",
                   "grad_clip", "precision", "activation_checkpointing")


def full_decoder_run(paper: str, notebook: str):
    """(GPTConfig, seq_len, train dict) of a decoder notebook's full preset; only domain_upsampling's 01_train
    (MPT-7B, the largest decoder trained from scratch) and scaling_inference's empirical are read here."""
    if paper == "domain_upsampling":
        from papers.domain_upsampling.scales import NOTEBOOKS
        spec = NOTEBOOKS[notebook].build("full")
        vocab = spec.data.tokenizer.vocab_size
        cfg = resolve_model_config(spec.model, "gpt", **({"vocab_size": vocab} if vocab else {}))
        return cfg, spec.data.seq_len, dataclasses.asdict(spec.train)
    raise SystemExit(f"--paper {paper!r}: only domain_upsampling is wired in this check")


def random_batches(vocab: int, batch: int, seq: int, device: torch.device, seed: int = 0):
    """Fresh random token micro-batches forever: {"input_ids", "targets"} of shape (batch, seq)."""
    g = torch.Generator().manual_seed(seed)
    while True:
        ids = torch.randint(0, vocab, (batch, seq + 1), generator=g)
        yield {"input_ids": ids[:, :-1].to(device), "targets": ids[:, 1:].to(device)}


def check(paper: str, notebook: str, layers: int, steps: int, device: str, small: bool, tolerance: float) -> dict:
    cfg, seq, train = full_decoder_run(paper, notebook)
    micro = int(train["micro_batch_size"] or train["global_batch_size"])
    if small:                       # the script's logic on a CPU: a tiny model of the same family
        cfg = dataclasses.replace(cfg, d_model=64, n_head=4, n_kv_head=4, d_ff=256, vocab_size=512)
        seq, micro = 64, 2
    cfg = dataclasses.replace(cfg, n_layer=layers, max_seq_len=max(cfg.max_seq_len, seq))
    kept = {k: train[k] for k in KEPT_TRAIN_KEYS if k in train}
    if device == "cpu":
        kept["precision"] = "fp32"
    plan = run_plan(f"{paper}/{notebook} at {layers} layers", gpt_cost(cfg, seq),
                    {**kept, "max_steps": steps, "micro_batch_size": micro, "global_batch_size": micro,
                     "parallelism": "none"})
    estimate = memory_per_gpu(plan, world_size=1, activation_checkpointing=bool(kept.get("activation_checkpointing")))
    out = {"paper": paper, "notebook": notebook, "device": device, "layers": layers, "d_model": cfg.d_model,
           "n_head": cfg.n_head, "vocab_size": cfg.vocab_size, "seq_len": seq, "micro_batch_size": micro,
           "precision": kept.get("precision"), "activation_checkpointing": bool(kept.get("activation_checkpointing")),
           "estimate_gib": estimate.gib()}
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(dev)
    with tempfile.TemporaryDirectory() as run_dir:
        model = GPT(cfg)
        config = TrainConfig(**kept, max_steps=steps, micro_batch_size=micro, global_batch_size=micro,
                             parallelism="none", device=device, run_dir=run_dir, checkpoint_at_end=False,
                             progress_bar=False, log_every=1, schedule="constant")
        warnings.filterwarnings("ignore", message="train_data has no state_dict")   # 3 steps, never resumed
        history = Trainer(model, lm_loss, random_batches(cfg.vocab_size, micro, seq, dev), config).fit()
    out["losses"] = [round(float(r["loss"]), 4) for r in history.train]
    if dev.type != "cuda":
        out.update(measured_gib=None, ratio=None, passed=None,
                   note="no CUDA allocator statistics on this device: the estimate is printed, nothing compared")
        return out
    measured = torch.cuda.max_memory_allocated(dev)
    out.update(verdict(measured, estimate.total, tolerance), gpu=torch.cuda.get_device_name(dev))
    return out


def verdict(measured_bytes: float, estimated_bytes: float, tolerance: float) -> dict:
    """measured_gib, ratio (measured / estimated), tolerance and passed: False only when the preflight
    under-counts by more than ``tolerance`` (an over-estimate passes: it only costs headroom)."""
    ratio = measured_bytes / estimated_bytes
    return {"measured_gib": round(measured_bytes / GIB, 3), "ratio": round(ratio, 3), "tolerance": tolerance,
            "passed": ratio <= 1 + tolerance}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--paper", default="domain_upsampling")
    ap.add_argument("--notebook", default="01_train")
    ap.add_argument("--layers", type=int, default=4, help="blocks kept at the preset's width (default 4)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--small", action="store_true", help="a tiny model of the same family (CPU check of the script)")
    ap.add_argument("--tolerance", type=float, default=0.15, help="allowed excess of measured over estimated")
    ap.add_argument("--json", action="store_true", help="print one JSON object only")
    args = ap.parse_args(argv)
    if args.layers < 1 or args.steps < 1:
        ap.error("--layers and --steps must be >= 1")
    out = check(args.paper, args.notebook, args.layers, args.steps, args.device, args.small, args.tolerance)
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{out['paper']}/{out['notebook']} full preset at {out['layers']} layers, d_model {out['d_model']}, "
              f"seq {out['seq_len']}, micro-batch {out['micro_batch_size']}, {out['precision']}, "
              f"checkpointing {out['activation_checkpointing']} on {out.get('gpu', out['device'])}")
        print("  estimate (GiB): " + ", ".join(f"{k} {v}" for k, v in out["estimate_gib"].items()))
        print(f"  measured peak: {out['measured_gib']} GiB; measured / estimate = {out['ratio']}"
              + ("" if out["passed"] is None else f" ({'ok' if out['passed'] else 'UNDER-ESTIMATED'}, "
                                                  f"tolerance {out['tolerance']:.0%})"))
        print(f"  losses: {out['losses']}")
        print(json.dumps(out))
    return 1 if out["passed"] is False else 0


if __name__ == "__main__":
    sys.exit(main())
