"""torch.compile of the SD2 UNet's blocks, as the full preset trains it: each block compiled on its own (as FSDP
wraps them), channels_last inputs, fp16 autocast; a few training steps beside the eager model.

    python ci/compile_check.py --device cuda              # the GPU check (ci/gpu_check.sh, part 5)
    python ci/compile_check.py --device cpu --dynamic auto   # torch's automatic dynamic shapes: fails on CPU

The UNet's down and up blocks are instances of a few classes at different shapes, so a block class compiled
once recompiles for the next instance; with torch's automatic dynamic shapes that recompile is symbolic, and the
inductor then fails under channels_last ("cannot determine truth value of Relational: 32*s20*s33 < 32", torch
2.13 on CPU). TrainConfig.compile_dynamic=False (what the SD2 entry point sets) compiles one static graph per
shape instead. On a 2-core CPU the first C++ build takes about 15 minutes, so this is not part of the CPU test
suite.
Exit status 0 when the compiled losses are finite and within --rtol of the eager ones.
"""
from __future__ import annotations

import argparse
import copy
import math
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

try:                            # the UNet is diffusers': a GPU machine without it skips this check
    from papers.commoncanvas.text_to_image import diffusion_model_config
    from shared.models.diffusion import TextToImageDiffusion
    MISSING = None
except ImportError as exc:
    MISSING = exc

# the CPU rehearsal's cut of the SD2 flavour (papers/commoncanvas/rehearsal.py): the same four levels and block
# classes, narrow, with a 1-layer text tower
SHAPE = {"flavour": "sd2-unet", "block_out_channels": [32, 32, 64, 64], "layers_per_block": 1,
         "attention_heads": [2, 2, 4, 4],
         "text": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64}}


def losses(model: TextToImageDiffusion, device: str, steps: int) -> list[float]:
    """`steps` SGD steps on one fixed batch (latents [2, 4, 8, 8] channels_last, captions [2, 8]); the losses."""
    gen = torch.Generator().manual_seed(0)
    latents = torch.randn(2, 4, 8, 8, generator=gen).to(device).contiguous(memory_format=torch.channels_last)
    ids = torch.randint(0, 100, (2, 8), generator=gen).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    out = []
    for step in range(steps):
        torch.manual_seed(step)                      # the same timesteps and noise in both models
        with torch.autocast(device, dtype=torch.float16):
            loss = model(latents=latents, input_ids=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        out.append(float(loss))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--dynamic", choices=["static", "auto"], default="static",
                    help="static: dynamic=False (what SD2 trains with); auto: torch's default")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--rtol", type=float, default=2e-2)
    args = ap.parse_args()
    if MISSING is not None:
        print(f"compile_check: skipped ({type(MISSING).__name__}: {MISSING})")
        return 0
    torch.manual_seed(0)
    cfg = diffusion_model_config(SHAPE, vocab_size=100, resolution=64, max_length=8)
    eager = TextToImageDiffusion(cfg, null_input_ids=torch.zeros(8, dtype=torch.long)).to(args.device)
    compiled = copy.deepcopy(eager)
    for block in compiled.blocks:
        block.compile(dynamic=False if args.dynamic == "static" else None)
    t0 = time.time()
    reference = losses(eager, args.device, args.steps)
    ours = losses(compiled, args.device, args.steps)
    print(f"eager    {[round(v, 5) for v in reference]}")
    print(f"compiled {[round(v, 5) for v in ours]}  ({args.dynamic} shapes, {time.time() - t0:.0f} s with compiling)")
    ok = all(math.isfinite(b) and abs(a - b) <= args.rtol * abs(a) for a, b in zip(reference, ours))
    print("compile_check:", "ok" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
