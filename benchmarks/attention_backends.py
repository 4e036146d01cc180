"""Time the attention backends on this machine, to justify what ``backend="auto"`` picks.

For each case (causal only; packed documents; documents + ALiBi) it times every backend that can
run it: forward under no_grad, and forward+backward where the backend has a backward. Backends are
interleaved round by round and the median is reported, so load from other processes hits all alike.

    OMP_NUM_THREADS=1 python benchmarks/attention_backends.py --batch 4 --heads 8 --seq 256 --head-dim 32
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from shared.kernels.alibi import alibi_slopes
from shared.kernels.attention import attention, available_backends


def _time(fn, rounds_out: list[float]) -> None:
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    sync()
    t0 = time.perf_counter()
    fn()
    sync()
    rounds_out.append(time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--head-dim", type=int, default=32)
    ap.add_argument("--docs", type=int, default=4, help="documents packed per row")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    args = ap.parse_args()
    dev, dtype = torch.device(args.device), getattr(torch, args.dtype)
    shape = (args.batch, args.heads, args.seq, args.head_dim)
    q, k, v = (torch.randn(shape, device=dev, dtype=dtype) for _ in range(3))
    doc_ids = (torch.arange(args.seq, device=dev) * args.docs // args.seq).expand(args.batch, -1)
    cases = {"causal": {}, "causal+docs": {"doc_ids": doc_ids},
             "causal+docs+alibi": {"doc_ids": doc_ids, "alibi_slopes": alibi_slopes(args.heads, dev)}}
    print(f"device={dev} dtype={args.dtype} threads={torch.get_num_threads()} shape(B,H,S,D)={shape} "
          f"docs/row={args.docs} torch={torch.__version__}")
    print(f"{'case':<20}{'backend':<11}{'fwd ms':>10}{'fwd+bwd ms':>12}")
    for case, extra in cases.items():
        backends = available_backends(q)
        fwd = {b: [] for b in backends}
        fwd_bwd = {b: [] for b in backends if b != "flex" or dev.type != "cpu"}
        leaves = [t.clone().requires_grad_(True) for t in (q, k, v)]
        for _r in range(args.rounds + 1):  # round 0 is warmup (and compiles flex on GPU)
            for b in backends:
                with torch.no_grad():
                    _time(lambda: attention(q, k, v, causal=True, backend=b, **extra), fwd[b])
                if b in fwd_bwd:
                    _time(lambda: attention(*leaves, causal=True, backend=b, **extra).sum().backward(), fwd_bwd[b])
        for b in backends:
            f = statistics.median(fwd[b][1:]) * 1e3
            fb = f"{statistics.median(fwd_bwd[b][1:]) * 1e3:12.2f}" if b in fwd_bwd else f"{'n/a':>12}"
            print(f"{case:<20}{b:<11}{f:10.2f}{fb}")


if __name__ == "__main__":
    main()
