"""Training-step throughput: our GPT decoder vs transformers' LlamaForCausalLM, same Llama shape.

Both models hold the same weights (ours is exported with ``gpt_hf.gpt_to_llama``), see the same inputs,
use the same ``torch.optim.AdamW`` settings and dtype; transformers runs with its default attention
implementation (sdpa) and ``use_cache=False`` (what training should pass). A step is forward +
loss + backward + AdamW step + zero_grad. Four variants, so the model and the loss are told apart:
  ours  fused loss      ``gpt(x, targets=y).loss``: fused chunked LM-head + cross-entropy, no logits
  ours  logits + CE     ``F.cross_entropy(gpt(x).logits, y)``
  hf    labels= loss    ``llama(x, labels=y, shift_labels=y).loss``: transformers' own loss path
  hf    logits + CE     ``F.cross_entropy(llama(x).logits, y)``
Variants run in turn, in a rotating order, so load from other processes hits all alike; warmup
steps are excluded; medians are reported. On CUDA the step runs under bf16 autocast (the default
``--dtype`` there); the same script runs unchanged on CPU and CUDA.

    OMP_NUM_THREADS=1 python benchmarks/decoder_vs_llama.py --threads 1
    python benchmarks/decoder_vs_llama.py --device cuda --layers 12 --d-model 768 --heads 12 --seq 1024
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from shared.models.gpt import GPT, GPTConfig
from shared.models.gpt_hf import gpt_to_llama


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=None, help="grouped-query attention (default: = heads)")
    ap.add_argument("--d-ff", type=int, default=None, help="default: 8/3 d_model rounded up to 64")
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=10, help="timed steps per model")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps per model first")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default=None, choices=["float32", "bfloat16"],
                    help="autocast dtype (default: bfloat16 on CUDA, float32 = no autocast on CPU)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args()


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError:
        pass
    return platform.machine()


def make_step(loss_fn, params, device, dtype):
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.1)
    autocast = dtype != torch.float32

    def step() -> float:
        with torch.autocast(device.type, dtype=dtype, enabled=autocast):
            loss = loss_fn()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()  # also synchronises CUDA
    return step


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype or ("bfloat16" if device.type == "cuda" else "float32"))
    torch.manual_seed(args.seed)
    cfg = GPTConfig(vocab_size=args.vocab, n_layer=args.layers, n_head=args.heads, n_kv_head=args.kv_heads,
                    d_model=args.d_model, d_ff=args.d_ff, max_seq_len=args.seq, position="rope", norm="rmsnorm",
                    mlp="swiglu", bias=False, tie_embeddings=False)
    ours = GPT(cfg).to(device)
    hf = gpt_to_llama(ours).to(device)  # same weights
    ours.train(), hf.train()
    g = torch.Generator().manual_seed(args.seed)
    tokens = torch.randint(0, cfg.vocab_size, (args.batch, args.seq + 1), generator=g).to(device)
    x, y = tokens[:, :-1].contiguous(), tokens[:, 1:].contiguous()
    ce = F.cross_entropy
    loss_fns = {  # name -> (loss closure, the model it trains)
        "ours  fused loss": (lambda: ours(x, targets=y).loss, ours),
        "ours  logits + CE": (lambda: ce(ours(x).logits.flatten(0, 1), y.flatten()), ours),
        "hf    labels= loss": (lambda: hf(input_ids=x, labels=y, shift_labels=y, use_cache=False).loss, hf),
        "hf    logits + CE": (lambda: ce(hf(input_ids=x, use_cache=False).logits.flatten(0, 1), y.flatten()), hf),
    }
    with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
        first_loss = {name: fn().item() for name, (fn, _) in loss_fns.items()}
    steps = {name: make_step(fn, model.parameters(), device, dtype) for name, (fn, model) in loss_fns.items()}
    for _ in range(args.warmup):
        for step in steps.values():
            step()
    times = {name: [] for name in steps}
    cpu_times = {name: [] for name in steps}
    order = list(steps)
    for r in range(args.steps):
        for name in order[r % len(order):] + order[:r % len(order)]:
            t0, c0 = time.perf_counter(), time.process_time()
            steps[name]()
            times[name].append(time.perf_counter() - t0)
            cpu_times[name].append(time.process_time() - c0)

    tokens_per_step = args.batch * args.seq
    name = torch.cuda.get_device_name() if device.type == "cuda" else _cpu_name()
    print(f"device: {device} ({name}), "
          f"threads: {torch.get_num_threads()}, torch {torch.__version__}, autocast dtype: {dtype}")
    print(f"shape: layers {cfg.n_layer}, d_model {cfg.d_model}, heads {cfg.n_head}/{cfg.n_kv_head} kv, "
          f"d_ff {cfg.d_ff}, "
          f"vocab {cfg.vocab_size}, seq {args.seq}, batch {args.batch}; params ours {ours.num_params():,} / "
          f"transformers {sum(p.numel() for p in hf.parameters()):,}; transformers attention: "
          f"{hf.config._attn_implementation}")
    print("first-step loss (same weights, same batch): "
          + ", ".join(f"{name.split()[0]} {' '.join(name.split()[1:])} {v:.5f}" for name, v in first_loss.items()))
    print(f"{args.warmup} warmup + {args.steps} timed steps per variant; tokens/s from the median step. "
          "cpu tok/s = tokens per CPU-second of this process (robust to other processes' load with 1 thread)")
    rate, cpu_rate = {}, {}
    for name, ts in times.items():
        med = statistics.median(ts)
        rate[name] = tokens_per_step / med
        cpu_rate[name] = tokens_per_step / statistics.median(cpu_times[name])
        print(f"  {name:<20} {rate[name]:>9,.0f} tok/s   median step {med * 1e3:8.1f} ms "
              f"(min {min(ts) * 1e3:.1f}, max {max(ts) * 1e3:.1f})   cpu {cpu_rate[name]:>9,.0f} tok/s")
    for label, a, b in (("each model's own training loss (ours fused / hf labels=)", "ours  fused loss",
                         "hf    labels= loss"),
                        ("same external loss on logits (ours / hf)               ", "ours  logits + CE",
                         "hf    logits + CE")):
        print(f"  ratio, {label}: wall {rate[a] / rate[b]:.2f}x   cpu {cpu_rate[a] / cpu_rate[b]:.2f}x")


if __name__ == "__main__":
    main()
