#!/usr/bin/env python3
"""Kernel parity on the device at hand: every attention backend that can run against the float32
reference, padded (causal / bidirectional, ALiBi, packed documents, padding) and varlen, forward
and backward, in float32 and bfloat16. Prints one row per case; exits 1 on any mismatch or error.
A case is skipped only when the dispatch raises BackendUnavailable for it (it says why).

    python ci/gpu_parity.py                 # CUDA when available, else CPU (the CPU run checks the script)
    python ci/gpu_parity.py --device cpu

Tolerances: float32 1e-4 (TF32 is switched off for the check), bfloat16 3e-2 (outputs of order 1).
"""
from __future__ import annotations

import argparse
import itertools
import sys

import torch

from shared.kernels.alibi import alibi_slopes
from shared.kernels.attention import BACKENDS, BackendUnavailable, attention, available_backends, varlen_attention
from shared.kernels.padding import pad_input, unpad_input

TOL = {torch.float32: 1e-4, torch.bfloat16: 3e-2}


def make_case(device, dtype, batch=2, heads=4, seq=128, head_dim=64, seed=0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    q, k, v = (torch.randn(batch, heads, seq, head_dim, generator=g).to(device, dtype) for _ in range(3))
    doc_ids = torch.cat([torch.zeros(batch, seq // 3), torch.ones(batch, seq // 3),
                         torch.full((batch, seq - 2 * (seq // 3)), 2.0)], 1).long().to(device)
    lengths = torch.tensor([seq, seq // 2] + [seq - 7] * (batch - 2))[:batch]
    mask = (torch.arange(seq)[None, :] < lengths[:, None]).to(device)
    return q, k, v, doc_ids, mask


def max_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.float() - b.float()).abs().max().item()


def check_padded(backend, device, dtype, causal, alibi, docs, padding):
    q, k, v, doc_ids, mask = make_case(device, dtype)
    slopes = alibi_slopes(q.shape[1]).to(device) if alibi else None
    kw = dict(causal=causal, alibi_slopes=slopes, doc_ids=doc_ids if docs else None,
              key_padding_mask=mask if padding else None)
    grads = []
    for name in (backend, "reference"):
        qq, kk, vv = (t.detach().clone().requires_grad_(True) for t in (q, k, v))
        out = attention(qq, kk, vv, backend=name, **kw)
        out.float().square().sum().backward()
        grads.append((out.detach(), qq.grad, kk.grad, vv.grad))
    return max(max_err(a, b) for a, b in zip(*grads))


def check_varlen(backend, device, dtype, causal, alibi):
    q, k, v, _, mask = make_case(device, dtype)
    slopes = alibi_slopes(q.shape[1]).to(device) if alibi else None
    b, h, s, d = q.shape
    outs = []
    for name in (backend, "reference"):
        unpadded = []
        for t in (q, k, v):
            x, idx, cu, mx = unpad_input(t.transpose(1, 2), mask)   # (total, heads, head_dim)
            unpadded.append(x)
        out = varlen_attention(*unpadded, cu, mx, causal=causal, alibi_slopes=slopes, backend=name)
        outs.append(pad_input(out, idx, b, s))
    return max_err(*outs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dtypes = [torch.float32] + ([torch.bfloat16] if device.type == "cuda" else [])
    print(f"device: {torch.cuda.get_device_name(0) if device.type == 'cuda' else 'cpu'}, torch {torch.__version__}")
    failures = 0
    for dtype in dtypes:
        probe = make_case(device, dtype)[0]
        backends = [b for b in available_backends(probe) if b != "reference"]
        skipped = sorted(set(BACKENDS[1:]) - set(backends) - {"reference"})
        print(f"\n{str(dtype):16s} backends: {', '.join(backends)}" + (f" (unavailable: {', '.join(skipped)})" if skipped else ""))
        for backend in backends:
            for causal, alibi, docs, padding in itertools.product((True, False), repeat=4):
                if docs and padding:
                    continue
                try:
                    err = check_padded(backend, device, dtype, causal, alibi, docs, padding)
                    ok = err <= TOL[dtype]
                    msg = f"{err:.2e}"
                except BackendUnavailable as exc:  # the dispatch says why (e.g. no backward on this device);
                    ok, msg = True, f"skipped: {str(exc).splitlines()[0][:70]}"  # any other error fails
                except Exception as exc:
                    ok, msg = False, f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:70]}"
                failures += not ok
                print(f"  {'ok  ' if ok else 'FAIL'} {backend:6s} padded causal={causal:d} alibi={alibi:d} "
                      f"docs={docs:d} padding={padding:d}  max|diff| {msg}")
            for causal, alibi in itertools.product((True, False), repeat=2):
                try:
                    err = check_varlen(backend, device, dtype, causal, alibi)
                    ok, msg = err <= TOL[dtype], f"{err:.2e}"
                except BackendUnavailable as exc:
                    ok, msg = True, f"skipped: {str(exc).splitlines()[0][:70]}"
                except Exception as exc:
                    ok, msg = False, f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:70]}"
                failures += not ok
                print(f"  {'ok  ' if ok else 'FAIL'} {backend:6s} varlen causal={causal:d} alibi={alibi:d}  max|diff| {msg}")
    print(f"\n{'all agree' if not failures else f'{failures} mismatches'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
