"""Training recipes for text-to-image diffusion and its helper networks, all on the shared Trainer.

    history, ema = train_diffusion(model, {"images": x, "input_ids": ids}, TrainConfig(...), batch_size=64)
    train_recognizer(net, {"images": x, "colour": y_c, ...}, TrainConfig(...), batch_size=128)
    train_autoencoder(ae, images, TrainConfig(...), batch_size=64)

Data are in-memory dicts of tensors (rows on dim 0) fed by `ResumableBatches`; a data set smaller
than one batch is repeated until it fills one (the data-scarcity runs go down to a few images).
The loss functions live beside their models (shared.models.diffusion, shared.models.scene_recognizer).
"""
from __future__ import annotations

import functools
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from .config import TrainConfig
from .data import ResumableBatches
from .ema import EMA
from .metrics import History
from .trainer import Trainer


def repeat_to(data: Mapping[str, torch.Tensor], min_rows: int) -> dict[str, torch.Tensor]:
    """``data`` with its rows repeated (whole copies) until it has at least ``min_rows`` rows."""
    n = len(next(iter(data.values())))
    reps = -(-min_rows // n)
    return {k: v.repeat(reps, *[1] * (v.ndim - 1)) if reps > 1 else v for k, v in data.items()}


def _fresh(config: TrainConfig, fresh: bool) -> None:
    """Start a run from scratch: drop an earlier run's checkpoints and metrics in run_dir."""
    if fresh and config.run_dir is not None and Path(config.run_dir).exists():
        shutil.rmtree(config.run_dir)


def _batches(data: Mapping[str, torch.Tensor], batch_size: int, seed: int) -> ResumableBatches:
    return ResumableBatches(repeat_to(data, batch_size), batch_size, seed=seed)


def train_diffusion(model: nn.Module, data: Mapping[str, torch.Tensor], config: TrainConfig, batch_size: int,
                    ema_half_life: float | None = 50.0, ema_update_every: int = 1, ema_start: int = 0,
                    eval_fns: Mapping[str, Any] | None = None, callbacks: Sequence[Any] = (),
                    channels_last: bool = False, fresh: bool = True) -> tuple[History, EMA | None]:
    """Train a `TextToImageDiffusion` on ``data`` ({"images" | "latents", "input_ids" | "text_embeds"}).

    Returns the trainer's History and the EMA (None if ema_half_life is None); sample with
    ``with ema.applied(model): generate(model, ...)``.
    """
    from shared.models.diffusion import diffusion_loss
    _fresh(config, fresh)
    ema = EMA(model, ema_half_life, ema_update_every, ema_start) if ema_half_life else None
    loss_fn = diffusion_loss
    if channels_last:
        loss_fn = functools.partial(_channels_last_loss, loss_fn)
    trainer = Trainer(model, loss_fn, _batches(data, batch_size, config.seed), config, eval_fns=eval_fns,
                      callbacks=[*([ema] if ema else []), *callbacks])
    return trainer.fit(), ema


def _channels_last_loss(loss_fn, model, batch):
    batch = {k: v.contiguous(memory_format=torch.channels_last) if v.ndim == 4 else v for k, v in batch.items()}
    return loss_fn(model, batch)


def train_recognizer(net: nn.Module, data: Mapping[str, torch.Tensor], config: TrainConfig, batch_size: int,
                     fresh: bool = True) -> History:
    """Train a `SceneRecognizer` (recognizer, feature network or captioner) on labelled images."""
    from shared.models.scene_recognizer import attribute_loss
    _fresh(config, fresh)
    return Trainer(net, attribute_loss, _batches(data, batch_size, config.seed), config).fit()


def train_autoencoder(autoencoder: nn.Module, images: torch.Tensor, config: TrainConfig, batch_size: int,
                      kl_weight: float = 1e-4, fresh: bool = True) -> History:
    """Train a diffusers AutoencoderKL on images (N, C, S, S) in [-1, 1]."""
    from shared.models.diffusion import autoencoder_loss
    _fresh(config, fresh)
    autoencoder.requires_grad_(True)
    loss_fn = functools.partial(autoencoder_loss, kl_weight=kl_weight)
    history = Trainer(autoencoder, loss_fn, _batches({"images": images}, batch_size, config.seed), config).fit()
    autoencoder.requires_grad_(False)
    return history


# ---- the full-scale entry point (torchrun / FSDP2) ----------------------------------------------------
def build_from_config(config: dict[str, Any]):
    """(model, tokenizer, records) of an entry-point config (see `train_main`); model on CPU."""
    import dataclasses

    from shared.data.image_captions import load_caption_tokenizer, read_manifest
    from shared.models.diffusion import DiffusionConfig, TextToImageDiffusion, sd2_config

    data_dir = Path(config["data_dir"])
    local = lambda key: str(data_dir / config[key]) if config.get(key) else None  # noqa: E731
    records = read_manifest(data_dir / config.get("manifest", "captions.jsonl"))
    if config.get("max_images"):
        records = records[: config["max_images"]]
    tokenizer = load_caption_tokenizer(local("tokenizer_path"), [r.caption for r in records],
                                       max_length=config.get("max_length", 77))
    arch = config.get("architecture", "sd2")
    if arch == "sd2":
        model_cfg = sd2_config(vocab_size=tokenizer.vocab_size, text_encoder_path=local("text_encoder_path"),
                               autoencoder_path=local("autoencoder_path"))
        text = dataclasses.replace(model_cfg.text, max_length=config.get("max_length", 77))
        model_cfg = dataclasses.replace(model_cfg, image_size=config["resolution"], text=text,
                                        train_text_encoder=not config.get("text_encoder_path"))
    else:
        text = {**arch.get("text", {}), "vocab_size": tokenizer.vocab_size, "max_length": config.get("max_length", 77)}
        model_cfg = DiffusionConfig.from_dict({**arch, "image_size": config["resolution"], "text": text})
    torch.manual_seed(config.get("seed", 0))
    model = TextToImageDiffusion(model_cfg, null_input_ids=tokenizer.encode([""])[0][0])
    return model, tokenizer, records


def load_trained(config: dict[str, Any], checkpoint: str | Path, use_ema: bool = True):
    """(model, tokenizer) with the weights of a `train_main` checkpoint (its EMA weights if saved)."""
    from .checkpoint import load_model_weights
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
      max_images (None: all; the data-scarcity subsets), resolution, max_length, micro_batch_size,
      architecture ("sd2" or a dict of DiffusionConfig fields), text_encoder_path / autoencoder_path /
      tokenizer_path (local folders relative to data_dir, e.g. an SD2-format "text_encoder", "vae",
      "tokenizer"; None builds a fresh one, and a fresh text encoder then trains jointly), init_from
      (a checkpoint folder whose model weights start this run, e.g. the previous resolution phase),
      train (TrainConfig fields), ema ({half_life_steps, update_every, start_step} or None),
      speedups (SpeedupConfig fields), seed. The EMA weights are saved with every checkpoint.
    """
    import dataclasses

    from shared.data.image_captions import ImageCaptionStream
    from shared.models.diffusion import diffusion_loss
    from shared.models.diffusion_speedups import SpeedupConfig, apply_speedups

    from . import distributed as D
    from .checkpoint import load_model_weights

    info = D.init_distributed(config.get("train", {}).get("device"))
    model, tokenizer, records = build_from_config(config)
    if config.get("init_from"):
        load_model_weights(config["init_from"], model)
    speed = SpeedupConfig(**config.get("speedups", {}))
    apply_speedups(model, dataclasses.replace(speed, compile=False))   # the trainer compiles (per FSDP block)
    train_cfg = TrainConfig.from_dict({**config.get("train", {}), "run_dir": run_dir,
                                       "micro_batch_size": config["micro_batch_size"],
                                       "compile": speed.compile or config.get("train", {}).get("compile", False)})
    stream = ImageCaptionStream(records, tokenizer, config["resolution"], config["micro_batch_size"],
                                rank=info.rank, world_size=info.world_size, seed=train_cfg.seed)
    ema_cfg = config.get("ema")
    callbacks = [EMA(model, **ema_cfg)] if ema_cfg else []
    loss_fn = functools.partial(_channels_last_loss, diffusion_loss) if speed.channels_last else diffusion_loss
    Trainer(model, loss_fn, stream, train_cfg, callbacks=callbacks, blocks=lambda m: m.blocks).fit()
