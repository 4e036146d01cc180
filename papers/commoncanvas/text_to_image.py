"""Training recipes for text-to-image diffusion and its helper networks, all on the shared Trainer.

    history, ema = train_diffusion(model, {"images": x, "input_ids": ids}, TrainConfig(...), batch_size=64)
    train_recognizer(net, {"images": x, "colour": y_c, ...}, TrainConfig(...), batch_size=128)
    train_autoencoder(ae, images, TrainConfig(...), batch_size=64)

Data are in-memory dicts of tensors (rows on dim 0) fed by `ResumableBatches`; a data set smaller
than one batch is repeated until it fills one (the data-scarcity runs go down to a few images).
The loss functions live beside their models (shared.models.diffusion, papers.commoncanvas.scene_recognizer).

The full-scale path (sd2_full_scale): `train_main` is the torchrun entry point
("papers.commoncanvas.text_to_image:train_main"), `train_phases` runs one training per resolution
phase, each starting from the previous phase's weights, and `load_trained` reads the result back.
"""
from __future__ import annotations

import dataclasses
import json
import functools
import shutil
from pathlib import Path
from typing import Any
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from papers.commoncanvas.diffusion_speedups import SpeedupConfig, apply_speedups
from papers.commoncanvas.image_captions import ImageCaptionStream, load_caption_tokenizer, read_manifest
from papers.commoncanvas.latent_cache import META_FILE, CaptionedImages, LatentCaptionStream, cache_dir, is_complete
from papers.commoncanvas.scene_recognizer import attribute_loss
from shared.models.diffusion import DiffusionConfig, TextToImageDiffusion, autoencoder_loss, diffusion_loss
from shared.models.flavours import model_config
from shared.train import distributed
from shared.train.checkpoint import latest_checkpoint, load_model_weights
from shared.train.config import SHARDED_PARALLELISMS, TrainConfig
from shared.train.data import ResumableBatches
from shared.train.ema import EMA
from shared.train.metrics import History
from shared.train.runner import run_training
from shared.train.trainer import Trainer

ENTRY_POINT = "papers.commoncanvas.text_to_image:train_main"
PRECOMPUTE_ENTRY_POINT = "papers.commoncanvas.text_to_image:precompute_main"


def repeat_to(data: Mapping[str, torch.Tensor], min_rows: int) -> dict[str, torch.Tensor]:
    """``data`` with its rows repeated (whole copies) until it has at least ``min_rows`` rows."""
    n = len(next(iter(data.values())))
    reps = -(-min_rows // n)
    return {k: v.repeat(reps, *[1] * (v.ndim - 1)) if reps > 1 else v for k, v in data.items()}


def _fresh(config: TrainConfig, fresh: bool) -> None:
    """Start a run from scratch: drop an earlier run's checkpoints and metrics in run_dir."""
    if fresh and config.run_dir is not None and Path(config.run_dir).exists():
        shutil.rmtree(config.run_dir)


def in_memory_batches(data: Mapping[str, torch.Tensor], batch_size: int, seed: int) -> ResumableBatches:
    """Endless shuffled batches of ``batch_size`` rows of ``data`` (repeated first if it has fewer rows)."""
    return ResumableBatches(repeat_to(data, batch_size), batch_size, seed=seed)


def train_diffusion(model: nn.Module, data: Mapping[str, torch.Tensor], config: TrainConfig, batch_size: int,
                    ema_half_life: float | None = 50.0, ema_update_every: int = 1, ema_start: int = 0,
                    eval_fns: Mapping[str, Any] | None = None, callbacks: Sequence[Any] = (),
                    channels_last: bool = False, fresh: bool = True) -> tuple[History, EMA | None]:
    """Train a `TextToImageDiffusion` on ``data`` ({"images" | "latents", "input_ids" | "text_embeds"}).

    Returns the trainer's History and the EMA (None if ema_half_life is None); sample with
    ``with ema.applied(model): generate(model, ...)``.
    """
    _fresh(config, fresh)
    ema = EMA(model, ema_half_life, ema_update_every, ema_start) if ema_half_life else None
    loss_fn = diffusion_loss
    if channels_last:
        loss_fn = functools.partial(channels_last_loss, loss_fn)
    trainer = Trainer(model, loss_fn, in_memory_batches(data, batch_size, config.seed), config, eval_fns=eval_fns,
                      callbacks=[*([ema] if ema else []), *callbacks])
    return trainer.fit(), ema


def channels_last_loss(loss_fn, model, batch):
    """``loss_fn`` on the batch with its 4-d tensors (B, C, H, W) in channels_last memory format."""
    batch = {k: v.contiguous(memory_format=torch.channels_last) if v.ndim == 4 else v for k, v in batch.items()}
    return loss_fn(model, batch)


def train_recognizer(net: nn.Module, data: Mapping[str, torch.Tensor], config: TrainConfig, batch_size: int,
                     fresh: bool = True) -> History:
    """Train a `SceneRecognizer` (recognizer, feature network or captioner) on labelled images."""
    _fresh(config, fresh)
    return Trainer(net, attribute_loss, in_memory_batches(data, batch_size, config.seed), config).fit()


def train_autoencoder(autoencoder: nn.Module, images: torch.Tensor, config: TrainConfig, batch_size: int,
                      kl_weight: float = 1e-4, fresh: bool = True) -> History:
    """Train a diffusers AutoencoderKL on images (N, C, S, S) in [-1, 1]."""
    _fresh(config, fresh)
    autoencoder.requires_grad_(True)
    loss_fn = functools.partial(autoencoder_loss, kl_weight=kl_weight)
    history = Trainer(autoencoder, loss_fn, in_memory_batches({"images": images}, batch_size, config.seed), config).fit()
    autoencoder.requires_grad_(False)
    return history


# ---- the full-scale entry point (torchrun / FSDP2) ----------------------------------------------------
def diffusion_model_config(model: str | Mapping[str, Any], vocab_size: int, resolution: int, max_length: int,
                           text_encoder_path: str | None = None,
                           autoencoder_path: str | None = None) -> DiffusionConfig:
    """The DiffusionConfig of an entry-point ``model``: a flavour name of shared.models.flavours (e.g.
    "sd2-unet") or ``{"flavour": name, **fields}`` (DiffusionConfig fields over the flavour's; ``text`` and
    ``autoencoder`` dicts replace only the fields they name, e.g. a rehearsal's narrower UNet), its text
    tower and autoencoder loaded from local folders where given (a fresh text encoder then trains
    jointly); or a dict of DiffusionConfig fields (``text`` without vocab_size / max_length, which come
    from the tokenizer)."""
    if isinstance(model, str) or "flavour" in model:
        fields = {"flavour": model} if isinstance(model, str) else dict(model)
        name = fields.pop("flavour")
        text_fields, autoencoder_fields = fields.pop("text", {}), fields.pop("autoencoder", {})
        cfg = model_config(name, **fields)
        text = dataclasses.replace(cfg.text, **text_fields, vocab_size=vocab_size, max_length=max_length,
                                   pretrained_path=text_encoder_path)
        autoencoder = dataclasses.replace(cfg.autoencoder, **{k: tuple(v) if isinstance(v, list) else v
                                                              for k, v in autoencoder_fields.items()},
                                          pretrained_path=autoencoder_path)
        return dataclasses.replace(cfg, image_size=resolution, text=text, autoencoder=autoencoder,
                                   train_text_encoder=not text_encoder_path)
    text = {**model.get("text", {}), "vocab_size": vocab_size, "max_length": max_length}
    return DiffusionConfig.from_dict({**model, "image_size": resolution, "text": text})


def subset(records: Sequence[Any], max_images: int | None, seed: int = 0) -> list[Any]:
    """``max_images`` records drawn uniformly at random (a fixed permutation, so a smaller subset lies
    inside every larger one), in manifest order; all of them when max_images is None or not smaller."""
    if not max_images or max_images >= len(records):
        return list(records)
    keep = np.sort(np.random.default_rng(seed).permutation(len(records))[:max_images])
    return [records[i] for i in keep]


def build_from_config(config: Mapping[str, Any]):
    """(model, tokenizer, records) of an entry-point config (see `train_main`); model on CPU."""
    data_dir = Path(config["data_dir"])
    local = lambda key: str(data_dir / config[key]) if config.get(key) else None  # noqa: E731
    records = subset(read_manifest(data_dir / config.get("manifest", "captions.jsonl")), config.get("max_images"))
    max_length = config.get("max_length", 77)
    tokenizer = load_caption_tokenizer(local("tokenizer_path"), [r.caption for r in records], max_length=max_length)
    model_cfg = diffusion_model_config(config.get("model", "sd2-unet"), tokenizer.vocab_size, config["resolution"],
                                       max_length, local("text_encoder_path"), local("autoencoder_path"))
    if config.get("latent_sample"):
        model_cfg = dataclasses.replace(model_cfg, latent_sample=True)
    torch.manual_seed(config.get("seed", 0))
    model = TextToImageDiffusion(model_cfg, null_input_ids=tokenizer.encode([""])[0][0])
    return model, tokenizer, records


def load_trained(config: Mapping[str, Any], checkpoint: str | Path, use_ema: bool = True):
    """(model, tokenizer) with the weights of a `train_main` checkpoint (its EMA weights if saved)."""
    model, tokenizer, _ = build_from_config(config)
    load_model_weights(checkpoint, model)
    if use_ema:
        ema = EMA(model, 1.0)
        ema.load(checkpoint, model)
        if ema.shadow is not None:
            ema.copy_to(model)
    return model.eval(), tokenizer


def train_main(config: dict[str, Any], run_dir: str) -> None:
    """Train a text-to-image model on image-caption pairs from ``config["data_dir"]``.

    The entry point of `shared.train.run_training` (one process, or every torchrun rank). Keys:
      data_dir, manifest ("captions.jsonl"; e.g. a synthetic-caption manifest for telephoning),
      max_images (None: all; else a seeded uniformly random subset, the data-scarcity runs), resolution,
      max_length, latent_sample (diffuse posterior draws of the autoencoder, as SD2; default its mean),
      latent_cache (a `latent_cache` folder: train on its precomputed latents and text embeddings),
      model (a flavour name such as "sd2-unet", {"flavour": name, **fields}, or a dict of DiffusionConfig
      fields), text_encoder_path /
      autoencoder_path / tokenizer_path (local folders relative to data_dir, e.g. an SD2-format
      "text_encoder", "vae", "tokenizer"; None builds a fresh one, and a fresh text encoder then trains
      jointly), init_from (a checkpoint folder whose model weights start this run, e.g. the previous
      resolution phase), train (TrainConfig fields, micro_batch_size included: the images per rank per
      micro-batch), ema ({half_life_steps, update_every, start_step} or
      None), speedups (SpeedupConfig fields), seed. The EMA weights are saved with every checkpoint.
    """
    info = distributed.init_distributed(config.get("train", {}).get("device"))
    model, tokenizer, records = build_from_config(config)
    if config.get("init_from"):
        load_model_weights(config["init_from"], model)
    speed = SpeedupConfig.from_dict(config.get("speedups", {}))
    compiled = speed.compile or config["train"].get("compile", False)
    # static graphs: the UNet's blocks share classes at different shapes (TrainConfig.compile_dynamic)
    train_cfg = TrainConfig.from_dict({**config["train"], "run_dir": run_dir, "compile": compiled,
                                       **({"compile_dynamic": False} if compiled else {})})
    # FSDP2 shards contiguous parameters only: sharded over several ranks, the UNet's weights stay NCHW and
    # channels_last is the inputs' alone (channels_last_loss; a convolution of an NHWC input runs NHWC)
    sharded = train_cfg.parallelism in SHARDED_PARALLELISMS and info.world_size > 1
    apply_speedups(model, dataclasses.replace(speed, compile=False,   # the trainer compiles (per FSDP block)
                                              channels_last=speed.channels_last and not sharded))
    if config.get("latent_cache"):
        stream = LatentCaptionStream(config["latent_cache"], train_cfg.micro_batch_size, rank=info.rank,
                                     world_size=info.world_size, seed=train_cfg.seed)
    else:
        stream = ImageCaptionStream(records, tokenizer, config["resolution"], train_cfg.micro_batch_size,
                                    rank=info.rank, world_size=info.world_size, seed=train_cfg.seed)
    ema_cfg = config.get("ema")
    callbacks = [EMA(model, **ema_cfg)] if ema_cfg else []
    loss_fn = functools.partial(channels_last_loss, diffusion_loss) if speed.channels_last else diffusion_loss
    Trainer(model, loss_fn, stream, train_cfg, callbacks=callbacks, blocks=lambda m: m.blocks).fit()


ENTRY_KEYS = ("manifest", "max_images", "max_length", "model", "tokenizer_path", "text_encoder_path",
              "autoencoder_path", "speedups")


def train_phases(config: Mapping[str, Any], data_root: str | Path, out_dir: str | Path, seed: int,
                 nproc_per_node: int = 1, nnodes: int = 1) -> tuple[dict[str, History], str, dict[str, Any]]:
    """One `train_main` run per resolution phase of ``config["phases"]``, each starting from the previous
    phase's last checkpoint, under out_dir/train/<phase name>.

    ``config``: the sd2_full_scale preset as a plain dict (ENTRY_KEYS, ``ema``, ``train``, ``phases``,
    ``fresh``; optional ``ema_phases``: the phase names EMA runs in, default all; ``latent_sample``;
    ``precompute_latents``: before each phase, encode every image at its resolution and every caption once
    into out_dir/latents/<manifest>-<size>-<R>px-<hash> (`latent_cache`), kept across runs, and train on those).
    Returns (History per phase, the last checkpoint, the last phase's entry-point config).
    """
    histories: dict[str, History] = {}
    previous, entry_cfg = None, {}
    ema_phases = config.get("ema_phases")
    for phase in config["phases"]:
        run_dir = Path(out_dir) / "train" / phase["name"]
        if config["fresh"] and run_dir.exists():
            shutil.rmtree(run_dir)
        entry_cfg = {key: config[key] for key in ENTRY_KEYS}
        entry_cfg.update(data_dir=str(data_root), resolution=phase["resolution"], seed=seed, init_from=previous,
                         ema=config["ema"] if ema_phases is None or phase["name"] in ema_phases else None,
                         train={**config["train"], "max_steps": phase["max_steps"], "seed": seed})
        if config.get("latent_sample"):
            entry_cfg["latent_sample"] = True
        if config.get("precompute_latents"):
            cache = cache_dir(out_dir, entry_cfg)
            if not is_complete(cache):
                run_training(PRECOMPUTE_ENTRY_POINT, {**entry_cfg, "init_from": None}, run_dir=cache,
                             nproc_per_node=nproc_per_node, nnodes=nnodes)
            entry_cfg["latent_cache"] = str(cache)
        histories[phase["name"]] = run_training(ENTRY_POINT, entry_cfg, run_dir=run_dir,
                                                nproc_per_node=nproc_per_node, nnodes=nnodes)
        previous = str(latest_checkpoint(run_dir))
    return histories, previous, entry_cfg


@torch.no_grad()
def precompute_main(config: dict[str, Any], run_dir: str) -> None:
    """Torchrun entry point: rank k of W encodes records k, k + W, ... into ``run_dir``.

    ``config``: `text_to_image.train_main`'s keys (data_dir, manifest, max_images, resolution, model and
    the encoder folders, latent_sample, seed) plus ``precompute_batch_size`` (default 64) and
    ``precompute_workers`` (image-decoding processes per rank, default 8). Refuses a trainable text
    encoder (its embeddings change at every step)."""
    info = distributed.init_distributed(config.get("train", {}).get("device"))
    model, tokenizer, records = build_from_config(config)
    if model.cfg.train_text_encoder:
        raise ValueError("precompute_latents needs a frozen text encoder (give text_encoder_path)")
    model.to(info.device).eval()
    out = Path(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = np.arange(info.rank, len(records), info.world_size)
    s, c = model.cfg.latent_size, model.cfg.unet_channels
    length, width = model.cfg.text.max_length, model.text_encoder.hidden_size
    part = f"part{info.rank:05d}"
    latents = np.lib.format.open_memmap(out / f"{part}.latents.npy", "w+", np.float16, (len(rows), c, s, s))
    text = np.lib.format.open_memmap(out / f"{part}.text.npy", "w+", np.float16, (len(rows), length, width))
    index = np.lib.format.open_memmap(out / f"{part}.index.npy", "w+", np.int64, (len(rows),))
    loader = torch.utils.data.DataLoader(CaptionedImages(records, rows, config["resolution"]),
                                         batch_size=config.get("precompute_batch_size", 64),
                                         num_workers=config.get("precompute_workers", 8))
    torch.manual_seed(config.get("seed", 0) * 100_003 + info.rank)   # the posterior draws
    pos = 0
    for idx, images, captions in loader:
        n = len(idx)
        latents[pos:pos + n] = model.encode_images(images.to(info.device)).half().cpu().numpy()
        text[pos:pos + n] = model.encode_text(tokenizer.encode(list(captions))[0].to(info.device)).half().cpu().numpy()
        index[pos:pos + n] = idx.numpy()
        pos += n
    for array in (latents, text, index):
        array.flush()
    distributed.barrier()
    if info.rank == 0:
        meta = {"records": len(records), "parts": info.world_size, "resolution": config["resolution"],
                "latent_shape": [c, s, s], "text_shape": [length, width]}
        (out / META_FILE).write_text(json.dumps(meta, indent=1))
    distributed.barrier()
