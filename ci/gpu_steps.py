#!/usr/bin/env python3
"""One tiny multi-step training run per model stack through the shared Trainer, on the device at hand
(bf16 autocast on CUDA, float32 on CPU). Prints, per stack, the first and last loss, tokens/s (or
samples/s) and MFU as the trainer measured them; exits 1 if a stack fails or its loss does not fall.

    python ci/gpu_steps.py                      # CUDA when available
    python ci/gpu_steps.py --device cpu --steps 8 --small     # checks the script on a CPU

Stacks: decoder (GPT on random tokens, a fixed batch so the loss must fall), encoder (MosaicBERT
MLM), vision (CIFAR ResNet), diffusion (diffusers UNet2DConditionModel); a stack whose module or
package is missing is reported as skipped.
"""
from __future__ import annotations

import argparse
import sys
import time
import traceback

import torch

from shared.train import TrainConfig, Trainer


def fixed_batches(batch: dict):
    """The same batch forever (the loss must fall on it)."""
    while True:
        yield batch


def decoder_stack(device, small):
    from shared.models.gpt import GPT, GPTConfig
    from shared.train.lm import lm_loss
    d, layers, seq, bs = (128, 2, 128, 8) if small else (1024, 8, 1024, 16)
    cfg = GPTConfig(vocab_size=8192, n_layer=layers, n_head=d // 64, d_model=d, max_seq_len=seq)
    model = GPT(cfg)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, cfg.vocab_size, (bs, seq + 1), generator=g)
    batch = {"input_ids": ids[:, :-1], "targets": ids[:, 1:], "doc_ids": torch.zeros(bs, seq, dtype=torch.long),
             "loss_mask": torch.ones(bs, seq, dtype=torch.bool)}
    return model, lm_loss, fixed_batches(batch), 3e-3


def encoder_stack(device, small):
    from shared.models.bert import BertConfig, BertForMaskedLM
    from shared.pipelines.mlm_pretrain import mlm_loss
    d, layers, seq, bs = (128, 2, 128, 8) if small else (768, 12, 128, 128)
    cfg = BertConfig(vocab_size=30528, n_layer=layers, n_head=d // 64, d_model=d, d_ff=4 * d, max_seq_len=seq,
                     dropout=0.0, attn_dropout=0.0, alibi=True, glu=True, unpad=True, low_precision_norm=True)
    model = BertForMaskedLM(cfg)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, cfg.vocab_size, (bs, seq), generator=g)
    mask = torch.ones(bs, seq, dtype=torch.long)
    mask[bs // 2:, seq // 2:] = 0                          # half the rows half padded: exercises unpadding
    labels = torch.full_like(ids, -100)
    chosen = (torch.rand(bs, seq, generator=g) < 0.3) & mask.bool()
    labels[chosen] = ids[chosen]
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    return model, mlm_loss, fixed_batches(batch), 1e-3


def vision_stack(device, small):
    from shared.models.vision import VisionConfig, build_vision_model
    from shared.train.classification import cross_entropy_loss
    bs = 32 if small else 256
    model = build_vision_model(VisionConfig(arch="resnet", in_channels=3, image_size=32, width=16, blocks=3))
    g = torch.Generator().manual_seed(0)
    batch = {"x": torch.randn(bs, 3, 32, 32, generator=g), "y": torch.randint(0, 10, (bs,), generator=g)}
    return model, cross_entropy_loss, fixed_batches(batch), 1e-2


def diffusion_stack(device, small):
    from shared.models.diffusion import DiffusionConfig, TextToImageDiffusion, diffusion_loss
    size, channels, bs = (16, (32, 64), 16) if small else (64, (128, 256), 64)
    cfg = DiffusionConfig(image_size=size, block_out_channels=channels, norm_num_groups=32 if not small else 8)
    model = TextToImageDiffusion(cfg)
    g = torch.Generator().manual_seed(0)
    batch = {"images": torch.rand(bs, 3, size, size, generator=g) * 2 - 1,
             "input_ids": torch.randint(3, cfg.text.vocab_size, (bs, cfg.text.max_length), generator=g)}
    return model, diffusion_loss, fixed_batches(batch), 1e-3


TOKEN_STACKS = ("decoder", "encoder")   # tokens/s is meaningful for these; the others report samples/s
STACKS = {"decoder": decoder_stack, "encoder": encoder_stack, "vision": vision_stack, "diffusion": diffusion_stack}


def run_stack(name, device, steps, small) -> bool:
    try:
        model, loss_fn, batches, lr = STACKS[name](device, small)
    except (ImportError, AttributeError) as exc:
        print(f"  skip {name:9s} ({type(exc).__name__}: {exc})")
        return True
    cfg = TrainConfig(max_steps=steps, lr=lr, warmup_steps=0, schedule="constant", precision="bf16",
                      device=str(device), log_every=1, progress_bar=False, seed=0)
    t0 = time.perf_counter()
    try:
        trainer = Trainer(model, loss_fn, batches, cfg)
        history = trainer.fit()
    except Exception:
        print(f"  FAIL {name:9s}")
        traceback.print_exc()
        return False
    train = history.train
    first, last = train[0]["loss"], train[-1]["loss"]
    tail = train[len(train) // 2:]                       # steady state: skip compile/warmup steps
    tok = sum(r.get("tokens_per_s") or 0 for r in tail) / len(tail)
    smp = sum(r.get("samples_per_s") or 0 for r in tail) / len(tail)
    mfus = [r["mfu"] for r in tail if r.get("mfu") is not None]
    ok = last < first
    mfu_text = f"MFU {100 * sum(mfus) / len(mfus):5.1f}%" if mfus else "MFU n/a"
    print(f"  {'ok  ' if ok else 'FAIL'} {name:9s} params {sum(p.numel() for p in model.parameters()) / 1e6:7.2f}M  "
          f"loss {first:.3f} -> {last:.3f}  {f'{tok:12,.0f} tok/s' if name in TOKEN_STACKS else '':>18s}  "
          f"{smp:10,.1f} samples/s  {mfu_text}  "
          f"({time.perf_counter() - t0:.1f} s, {trainer.precision})")
    return ok


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--small", action="store_true", help="tiny shapes (for checking the script on a CPU)")
    ap.add_argument("--stack", action="append", choices=sorted(STACKS), help="only these stacks")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"
    print(f"device: {name}, torch {torch.__version__}, {args.steps} steps per stack")
    ok = [run_stack(s, device, args.steps, args.small) for s in (args.stack or STACKS)]
    return 0 if all(ok) else 1


if __name__ == "__main__":
    sys.exit(main())
