"""The training speedups of CommonCanvas (Gokaslan et al. 2024) for `TextToImageDiffusion`.

Each one is a switch that leaves the model's function unchanged (up to floating point), beside the
plain path it replaces; tests/test_diffusion_speedups.py checks that they agree.

- attention "sdpa": diffusers' `AttnProcessor2_0` in the UNet and transformers' "sdpa" in the text
  encoder call `F.scaled_dot_product_attention`, which dispatches to FlashAttention / memory-efficient
  kernels on GPU. "plain": diffusers' `AttnProcessor` and transformers' "eager" (softmax(QK^T)V by
  hand), the reference.
- low-precision norms: GroupNorm / LayerNorm computed in the autocast dtype (bf16) instead of the
  float32 that autocast forces on them. Without autocast (a float32 CPU run) this is exactly the
  plain norm, so it cannot speed anything up there.
- channels_last: the UNet's conv weights and inputs in NHWC memory format.
- compile: `torch.compile` of the UNet (the compile time is paid on the first steps).
- precomputed latents and text embeddings: the frozen autoencoder and text encoder run once over
  the data set (`precompute_latents_and_text`) instead of at every step.
- scheduled EMA lives in shared/train/ema.py (`update_every`, `start_step`).

`papers.commoncanvas.speedup_benchmark` times each switch alone and all of them together.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from shared.kernels.norms import (LowPrecisionGroupNorm, LowPrecisionLayerNorm,  # noqa: F401 (re-exported)
                                 use_low_precision_norms)
from shared.utils.config import StrictConfig

ATTENTION_KINDS = ("plain", "sdpa")


@dataclass
class SpeedupConfig(StrictConfig):
    """Which speedups a training run uses (all off = the baseline)."""
    precomputed: bool = False
    attention: str = "plain"
    low_precision_norms: bool = False
    channels_last: bool = False
    compile: bool = False
    ema_update_every: int = 1        # 0: EMA off (the scheduled-EMA phase before it starts)

    def __post_init__(self) -> None:
        if self.attention not in ATTENTION_KINDS:
            raise ValueError(f"attention={self.attention!r}; choose one of {ATTENTION_KINDS}")
        if self.ema_update_every < 0:
            raise ValueError("ema_update_every must be >= 0 (0 = no EMA)")


# ---- attention ------------------------------------------------------------------------------------
def set_attention(model: nn.Module, kind: str) -> None:
    """Use the plain (eager) or the SDPA attention in every diffusers and transformers submodule."""
    if kind not in ATTENTION_KINDS:
        raise ValueError(f"attention kind {kind!r}; choose one of {ATTENTION_KINDS}")
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0   # heavy third-party import
    for module in model.modules():
        if hasattr(module, "set_attn_processor") and hasattr(module, "attn_processors"):
            module.set_attn_processor(AttnProcessor() if kind == "plain" else AttnProcessor2_0())
        elif hasattr(module, "set_attn_implementation") and hasattr(module, "config"):
            module.set_attn_implementation("eager" if kind == "plain" else "sdpa")


# ---- low-precision norms: shared.kernels.norms (LowPrecisionGroupNorm / LowPrecisionLayerNorm) ----------


# ---- memory format, compile -----------------------------------------------------------------------
def use_channels_last(model: nn.Module) -> None:
    """NHWC weights for the UNet (inputs are converted in the training step by the caller)."""
    model.unet.to(memory_format=torch.channels_last)


def apply_speedups(model: nn.Module, cfg: SpeedupConfig) -> nn.Module:
    """Apply the model-side switches of ``cfg`` in place; returns the model."""
    set_attention(model, cfg.attention)
    use_low_precision_norms(model, cfg.low_precision_norms)
    if cfg.channels_last:
        use_channels_last(model)
    if cfg.compile:
        model.unet.compile()
    return model


# ---- precomputation -------------------------------------------------------------------------------
@torch.no_grad()
def precompute_latents_and_text(model: nn.Module, images: torch.Tensor, input_ids: torch.Tensor,
                                batch_size: int = 256) -> dict[str, torch.Tensor]:
    """Run the frozen autoencoder and text encoder once over a data set.

    images: (N, C, S, S) in [-1, 1]; input_ids: (N, L). Returns {"latents": (N, c, s, s),
    "text_embeds": (N, L, D)} on the model's device, what `TextToImageDiffusion.forward` takes.
    Refuses a trainable text encoder (its embeddings change at every step).
    """
    if model.cfg.train_text_encoder:
        raise ValueError("text embeddings can be precomputed only for a frozen text encoder "
                         "(train_text_encoder=False)")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    latents, embeds = [], []
    for s in range(0, len(images), batch_size):
        latents.append(model.encode_images(images[s:s + batch_size].to(device)))
        embeds.append(model.encode_text(input_ids[s:s + batch_size].to(device)))
    model.train(was_training)
    return {"latents": torch.cat(latents), "text_embeds": torch.cat(embeds)}
