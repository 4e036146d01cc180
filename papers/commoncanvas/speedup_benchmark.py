"""Training throughput of each CommonCanvas speedup on its own and all together, side by side.

Latent text-to-image diffusion (autoencoder + text encoder frozen, as in SD2 / CommonCanvas)
trained through the shared Trainer. The baseline encodes every batch with the autoencoder and
the text encoder, uses plain (eager) attention, float32 norms under autocast, contiguous memory,
eager mode and an EMA update at every step. Each variant switches one thing on; "all together"
switches on all of them. Variants are timed round-robin (each round runs every variant for a few
steps), so load from other processes hits all alike, and each variant's time per step is its fastest
round: on a one-thread CPU run that is this process's CPU time, which other jobs can only add to. A
same-compute control ("baseline (same compute)", the baseline again) measures how far two identical arms
differ: a speedup within that distance of 1 is noise.

    OMP_NUM_THREADS=1 python -m papers.commoncanvas.speedup_benchmark                 # tiny, CPU
    python -m papers.commoncanvas.speedup_benchmark --preset sd2 --compile --out sd2.json   # SD2 shapes, CUDA bf16

(`benchmarks/diffusion_speedups.py` is the same command.) The speedups notebook calls `run_benchmark`
with its preset, a `BenchConfig`.

On CPU the trainer runs float32, so the low-precision norms compute exactly what the plain ones do
(no effect is expected), and SDPA has no FlashAttention kernel; on CUDA the same script runs in
bf16 autocast where both apply.
"""
from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from papers.commoncanvas.diffusion_speedups import SpeedupConfig, apply_speedups, precompute_latents_and_text
from papers.commoncanvas.scenes import SceneConfig, WordTokenizer, generate_scenes
from papers.commoncanvas.text_to_image import channels_last_loss, in_memory_batches
from shared.models.diffusion import (AutoencoderConfig, DiffusionConfig, TextEncoderConfig, TextToImageDiffusion,
                                     diffusion_loss)
from shared.models.flavours import model_config as flavour_config
from shared.train import TrainConfig, Trainer
from shared.train.ema import EMA
from shared.utils.config import StrictConfig

PRESET_MODELS = {"tiny": "tiny", "sd2": "sd2-unet"}     # the command line's --preset -> BenchConfig.model
CONTROL = "baseline (same compute)"                     # the baseline timed again as its own arm


@dataclass
class BenchConfig(StrictConfig):
    """What the benchmark times (the speedups notebook's typed preset)."""
    model: str = "tiny"                       # tiny (sized below) | a diffusion flavour, e.g. "sd2-unet" at image_size
    image_size: int = 32
    global_batch_size: int = 16               # images per training step (one process)
    unet_channels: tuple[int, ...] = (32, 64)
    attention_heads: int = 4
    # The tiny defaults keep SD2's FLOP proportions: the autoencoder's encoder costs 1.39x and the text
    # encoder 0.05x the UNet's forward FLOPs (SD2 at 512 px: 1117, 45 and 804 GFLOPs; see
    # tests/test_diffusion_speedups.py), so precomputing removes a comparable share of the compute.
    autoencoder_channels: tuple[int, ...] = (24, 40, 64)
    autoencoder_layers: int = 1
    text_hidden: int = 64
    text_layers: int = 2
    norm_groups: int = 8
    warmup_steps: int = 2
    steps_per_round: int = 4
    rounds: int = 5
    include_compile: bool = False
    precision: str = "bf16"                   # the trainer autocasts to bf16 on CUDA; CPU runs fp32
    device: str | None = None
    ema_half_life: float = 100.0
    clock: str = "auto"       # wall | process (CPU time of this process) | auto: process on a 1-thread CPU run
    round_robin: bool = True  # interleave the variants (fair under load); False: one after another, each freed
                              # before the next (needed when several SD2-sized models do not fit in memory)
    max_length: int = 12      # caption tokens (SD2: 77)
    seed: int = 0
    variants: list[str] = field(default_factory=list)   # empty: all
    same_compute_control: bool = True   # time the baseline twice: the spread of two identical arms


def model_config(cfg: BenchConfig, vocab_size: int) -> DiffusionConfig:
    """The timed model: the tiny latent model sized by ``cfg``, or a flavour's shapes at cfg.image_size."""
    if cfg.model != "tiny":
        named = flavour_config(cfg.model)
        if not isinstance(named, DiffusionConfig):
            raise ValueError(f"model={cfg.model!r} is not a diffusion flavour; choose 'tiny' or e.g. 'sd2-unet'")
        return dataclasses.replace(named, image_size=cfg.image_size,
                                   text=dataclasses.replace(named.text, vocab_size=vocab_size,
                                                            max_length=cfg.max_length))
    n = len(cfg.unet_channels)
    return DiffusionConfig(
        image_size=cfg.image_size, latent=True, block_out_channels=cfg.unet_channels, norm_num_groups=cfg.norm_groups,
        down_block_types=("CrossAttnDownBlock2D",) * n, up_block_types=("CrossAttnUpBlock2D",) * n,
        attention_heads=cfg.attention_heads, train_text_encoder=False,
        text=TextEncoderConfig(vocab_size=vocab_size, hidden_size=cfg.text_hidden, num_layers=cfg.text_layers,
                               num_heads=4, max_length=cfg.max_length),
        autoencoder=AutoencoderConfig(block_out_channels=cfg.autoencoder_channels, latent_channels=4,
                                      layers_per_block=cfg.autoencoder_layers, norm_num_groups=cfg.norm_groups))


def variants(cfg: BenchConfig) -> list[tuple[str, SpeedupConfig]]:
    out = [("baseline", SpeedupConfig())]
    if cfg.same_compute_control:
        out.append((CONTROL, SpeedupConfig()))
    out += [("precomputed latents + text", SpeedupConfig(precomputed=True)),
           ("SDPA attention", SpeedupConfig(attention="sdpa")),
           ("low-precision norms", SpeedupConfig(low_precision_norms=True)),
           ("channels_last", SpeedupConfig(channels_last=True)),
           ("scheduled EMA (off phase)", SpeedupConfig(ema_update_every=0))]
    if cfg.include_compile:
        out.append(("torch.compile", SpeedupConfig(compile=True)))
    out.append(("all together", SpeedupConfig(precomputed=True, attention="sdpa", low_precision_norms=True,
                                              channels_last=True, compile=cfg.include_compile, ema_update_every=0)))
    if cfg.variants:
        unknown = sorted(set(cfg.variants) - {n for n, _ in out})
        if unknown:
            raise ValueError(f"unknown variants {unknown}; valid: {[n for n, _ in out]}")
        out = [v for v in out if v[0] in cfg.variants or v[0] in ("baseline", CONTROL)]
    return out


def timing_noise(rows: list[dict]) -> float | None:
    """How far the same-compute control's speedup is from 1 (None without the control): the size of a
    difference that two identical arms show, so speedups within it of 1 (or of each other) are noise."""
    control = [r for r in rows if r["variant"] == CONTROL]
    return abs(control[0]["speedup"] - 1.0) if control else None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _clock(cfg: BenchConfig, device: torch.device):
    """Wall time, or, for a one-thread CPU run, this process's CPU time: unlike wall time it does not
    count the time other processes on a shared machine take from us."""
    kind = cfg.clock
    if kind == "auto":
        kind = "process" if device.type == "cpu" and torch.get_num_threads() == 1 else "wall"
    if kind not in ("wall", "process"):
        raise ValueError(f"clock={cfg.clock!r}; choose 'auto', 'wall' or 'process'")
    return kind, (time.process_time if kind == "process" else time.perf_counter)


def _prepare(cfg: BenchConfig, name: str, speed: SpeedupConfig, images, ids, tok) -> dict:
    """A trainer for one variant, run through its warmup steps (which include any compile time)."""
    torch.manual_seed(cfg.seed)
    model = TextToImageDiffusion(model_config(cfg, tok.vocab_size), null_input_ids=tok.encode([""])[0][0])
    train_cfg = TrainConfig(max_steps=cfg.warmup_steps + cfg.rounds * cfg.steps_per_round, lr=1e-4,
                            precision=cfg.precision, progress_bar=False, log_every=0, device=cfg.device,
                            seed=cfg.seed, grad_clip=None)
    batch_data, precompute_s = {"images": images, "input_ids": ids}, None
    if speed.precomputed:
        device = torch.device(cfg.device) if cfg.device else (torch.device("cuda") if torch.cuda.is_available()
                                                              else torch.device("cpu"))
        model.to(device)
        t0 = time.perf_counter()
        batch_data = {k: v.cpu() for k, v in precompute_latents_and_text(model, images, ids).items()}
        _sync(device)
        precompute_s = time.perf_counter() - t0
    apply_speedups(model, speed)
    ema = EMA(model, cfg.ema_half_life, update_every=speed.ema_update_every)
    loss_fn = (lambda m, b: channels_last_loss(diffusion_loss, m, b)) if speed.channels_last else diffusion_loss
    trainer = Trainer(model, loss_fn, in_memory_batches(batch_data, cfg.global_batch_size, cfg.seed), train_cfg,
                      callbacks=[ema])
    clock_kind, clock = _clock(cfg, trainer.device)
    t0 = clock()
    trainer.fit(until_step=cfg.warmup_steps)
    _sync(trainer.device)
    return {"variant": name, "trainer": trainer, "first_steps_s": clock() - t0, "clock": clock_kind,
            "precompute_s": precompute_s, "rounds": [], "config": dataclasses.asdict(speed),
            "device": str(trainer.device), "precision": trainer.precision}


def _time_rounds(cfg: BenchConfig, runs: list[dict]) -> None:
    for r in range(cfg.rounds):
        until = cfg.warmup_steps + (r + 1) * cfg.steps_per_round
        for run in runs:
            clock = _clock(cfg, run["trainer"].device)[1]
            t0 = clock()
            run["trainer"].fit(until_step=until)
            _sync(run["trainer"].device)
            run["rounds"].append(clock() - t0)


def _release(trainer) -> None:
    device = trainer.device
    del trainer
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return None


def run_benchmark(cfg: BenchConfig) -> list[dict]:
    """One row per variant: samples/s and step time (fastest round), speedup over the baseline (ratio of the
    fastest rounds; ``speedup_paired_median``: the median over rounds of the paired ratio, for comparison),
    first-steps time (includes any compile time)."""
    scene = SceneConfig(image_size=cfg.image_size)
    tok = WordTokenizer(scene.vocabulary(), max_length=cfg.max_length)
    data = generate_scenes(max(4 * cfg.global_batch_size, 64), scene, seed=cfg.seed)
    images, ids = data.float_images(), tok.encode(data.captions)[0]
    runs = []
    for name, speed in variants(cfg):
        runs.append(_prepare(cfg, name, speed, images, ids, tok))
        if not cfg.round_robin:
            _time_rounds(cfg, runs[-1:])
            runs[-1]["trainer"] = _release(runs[-1]["trainer"])
    if cfg.round_robin:
        _time_rounds(cfg, runs)
    rows = []
    base_rounds = runs[0]["rounds"]
    for run in runs:
        # the fastest round: load from other jobs only ever adds time (CPU time: cache and scheduler effects)
        step_s = min(run["rounds"]) / cfg.steps_per_round
        speedup = min(base_rounds) / min(run["rounds"])
        paired = statistics.median(b / v for b, v in zip(base_rounds, run["rounds"]))
        rows.append({"variant": run["variant"], "samples_per_s": cfg.global_batch_size / step_s,
                     "step_ms": 1e3 * step_s, "speedup": speedup, "speedup_paired_median": paired,
                     "first_steps_s": run["first_steps_s"],
                     "warmup_overhead_s": max(run["first_steps_s"] - cfg.warmup_steps * step_s, 0.0),
                     "precompute_s": run["precompute_s"], "device": run["device"], "clock": run["clock"],
                     "precision": run["precision"], "speedups": run["config"]})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=["tiny", "sd2"], default="tiny")
    ap.add_argument("--image-size", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps-per-round", type=int, default=4)
    ap.add_argument("--clock", choices=["auto", "wall", "process"], default="auto")
    ap.add_argument("--compile", action="store_true", help="add torch.compile (costs compile time)")
    ap.add_argument("--device", default=None)
    ap.add_argument("--out", default=None, help="write the rows as JSON here")
    args = ap.parse_args()
    cfg = BenchConfig(model=PRESET_MODELS[args.preset], rounds=args.rounds, steps_per_round=args.steps_per_round,
                      include_compile=args.compile, device=args.device, clock=args.clock)
    if args.preset == "sd2":
        cfg = dataclasses.replace(cfg, image_size=256, global_batch_size=8, max_length=77, round_robin=False)
    if args.image_size:
        cfg = dataclasses.replace(cfg, image_size=args.image_size)
    if args.batch_size:
        cfg = dataclasses.replace(cfg, global_batch_size=args.batch_size)
    rows = run_benchmark(cfg)
    print(f"threads={torch.get_num_threads()} torch={torch.__version__} device={rows[0]['device']} "
          f"clock={rows[0]['clock']} "
          f"precision={rows[0]['precision']} image={cfg.image_size} batch={cfg.global_batch_size}")
    print(f"{'variant':<30}{'samples/s':>11}{'step ms':>10}{'speedup':>9}{'first steps s':>15}")
    for r in rows:
        print(f"{r['variant']:<30}{r['samples_per_s']:>11.1f}{r['step_ms']:>10.1f}{r['speedup']:>9.2f}"
              f"{r['first_steps_s']:>15.2f}")
    if args.out:
        Path(args.out).write_text(json.dumps({"config": dataclasses.asdict(cfg), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
