"""Text-to-image diffusion on diffusers: a conditional UNet, a text encoder, an optional autoencoder.

    cfg = DiffusionConfig(image_size=16, text=TextEncoderConfig(vocab_size=tok.vocab_size))
    model = TextToImageDiffusion(cfg, null_input_ids=tok.encode([""])[0])
    loss = model(images=x, input_ids=ids).loss                # the training loss (a scalar)
    imgs = generate(model, input_ids=ids, guidance_scale=3.0)  # (B, 3, S, S) in [-1, 1]

Every part is diffusers' or transformers' own, sized by config: `UNet2DConditionModel` (the
Stable Diffusion UNet), `AutoencoderKL` (the SD autoencoder, for latent diffusion), the noise
schedulers (`DDPMScheduler` for training; DDIM / DDPM / DPM-Solver++ / Euler for sampling) and
`CLIPTextModel` built from a `CLIPTextConfig` as the text encoder. `build_text_encoder` is the one
place the text encoder is made, so the repository's shared BERT encoder can replace it later.

Training follows Stable Diffusion 2 (which CommonCanvas trains, Gokaslan et al. 2024): x0 is the
image (pixel diffusion) or its autoencoder latent, t ~ U{0..T-1}, x_t = sqrt(a_t) x0 + sqrt(1-a_t) e,
and the UNet predicts e ("epsilon") or v = sqrt(a_t) e - sqrt(1-a_t) x0 ("v_prediction") from
(x_t, t, text embeddings) under an MSE loss. A fraction `caption_dropout` of captions is replaced
by the empty caption so one network learns both the conditional and the unconditional model that
classifier-free guidance combines: e = e_uncond + w (e_cond - e_uncond) (Ho & Salimans 2022).

The autoencoder is always frozen while the UNet trains (it is trained first with
`autoencoder_loss`); the text encoder is frozen when `train_text_encoder` is False, as in SD2 and
CommonCanvas, which is what lets latents and text embeddings be precomputed once.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from shared.models.output import ModelOutput
from shared.utils.config import StrictConfig

PREDICTION_TYPES = ("epsilon", "v_prediction")
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
SAMPLERS = ("ddim", "ddpm", "dpm++", "euler")


@dataclass
class TextEncoderConfig:
    """A CLIP-style text transformer (causal self-attention), from scratch or from a local folder.

    ``pretrained_path``: a local transformers CLIPTextModel folder (full scale: e.g. an OpenCLIP-H
    text tower converted to transformers format); None builds a fresh model from this config.
    """
    vocab_size: int = 64
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int | None = None       # default 4 * hidden_size
    max_length: int = 12
    pretrained_path: str | None = None


@dataclass
class AutoencoderConfig:
    """An SD-style KL autoencoder; downsamples by 2 ** (len(block_out_channels) - 1)."""
    block_out_channels: tuple[int, ...] = (32, 64)
    latent_channels: int = 4
    layers_per_block: int = 1
    norm_num_groups: int = 8
    scaling_factor: float = 1.0                 # latents are multiplied by it (SD: 0.18215)
    mid_block_attention: bool = True            # self-attention in the middle block (SD: yes)
    pretrained_path: str | None = None          # a local diffusers AutoencoderKL folder


@dataclass
class DiffusionConfig(StrictConfig):
    """The whole text-to-image model. ``attention_heads`` is the number of heads per UNet block
    (diffusers' UNet2DConditionModel takes it under the name ``attention_head_dim``)."""
    image_size: int = 16
    image_channels: int = 3
    latent: bool = False
    block_out_channels: tuple[int, ...] = (32, 64)
    layers_per_block: int = 1
    down_block_types: tuple[str, ...] = ("DownBlock2D", "CrossAttnDownBlock2D")
    up_block_types: tuple[str, ...] = ("CrossAttnUpBlock2D", "UpBlock2D")
    attention_heads: int | tuple[int, ...] = 4
    norm_num_groups: int = 8
    use_linear_projection: bool = False
    pooled_text_conditioning: bool = False     # also add attention-pooled text to the time embedding
    num_train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    beta_start: float = 0.0001
    beta_end: float = 0.02
    prediction_type: str = "epsilon"
    caption_dropout: float = 0.1
    snr_gamma: float | None = None             # Min-SNR loss weighting (Hang et al. 2023); None: plain MSE
    latent_sample: bool = False                # x0 = a draw from the autoencoder's posterior (SD2); False: its mean
    train_text_encoder: bool = True
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    autoencoder: AutoencoderConfig | None = None

    def __post_init__(self) -> None:
        if isinstance(self.text, dict):
            self.text = TextEncoderConfig(**self.text)
        if isinstance(self.autoencoder, dict):
            self.autoencoder = AutoencoderConfig(**{k: tuple(v) if isinstance(v, list) else v
                                                    for k, v in self.autoencoder.items()})
        for name in ("block_out_channels", "down_block_types", "up_block_types"):
            setattr(self, name, tuple(getattr(self, name)))
        if isinstance(self.attention_heads, list):
            self.attention_heads = tuple(self.attention_heads)
        if self.prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type={self.prediction_type!r}; choose one of {PREDICTION_TYPES}")
        if self.beta_schedule not in BETA_SCHEDULES:
            raise ValueError(f"beta_schedule={self.beta_schedule!r}; choose one of {BETA_SCHEDULES}")
        if not len(self.block_out_channels) == len(self.down_block_types) == len(self.up_block_types):
            raise ValueError("block_out_channels, down_block_types and up_block_types need the same length")
        if self.latent and self.autoencoder is None:
            raise ValueError("latent=True needs an autoencoder config")
        if not 0.0 <= self.caption_dropout < 1.0:
            raise ValueError(f"caption_dropout={self.caption_dropout} must be in [0, 1)")

    @property
    def latent_size(self) -> int:
        """Spatial size the UNet sees: image_size, or image_size / the autoencoder's downsampling."""
        if not self.latent:
            return self.image_size
        return self.image_size // 2 ** (len(self.autoencoder.block_out_channels) - 1)

    @property
    def unet_channels(self) -> int:
        return self.autoencoder.latent_channels if self.latent else self.image_channels


def sd2_config(vocab_size: int = 49408, text_encoder_path: str | None = None,
               autoencoder_path: str | None = None) -> DiffusionConfig:
    """Stable Diffusion 2 (base, 512 px) shapes, the architecture CommonCanvas trains.

    UNet: 320/640/1280/1280 channels, 2 layers per block, cross-attention in the first three
    levels, heads 5/10/20/20 (64-dim), linear projections, 1024-d context; KL-f8 autoencoder with
    4 latent channels and scaling 0.18215; an OpenCLIP ViT-H/14-shaped text tower (1024-d, 16 heads;
    SD2 uses the penultimate of its 24 layers, i.e. 23 layers); scaled-linear betas 0.00085..0.012.
    These are the published SD2-base config values; pretrained weights load from local folders only.
    """
    return DiffusionConfig(
        image_size=512, latent=True, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        attention_heads=(5, 10, 20, 20), norm_num_groups=32, use_linear_projection=True,
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, prediction_type="epsilon",
        caption_dropout=0.1, train_text_encoder=False,
        text=TextEncoderConfig(vocab_size=vocab_size, hidden_size=1024, num_layers=23, num_heads=16,
                               intermediate_size=4096, max_length=77, pretrained_path=text_encoder_path),
        autoencoder=AutoencoderConfig(block_out_channels=(128, 256, 512, 512), latent_channels=4,
                                      layers_per_block=2, norm_num_groups=32, scaling_factor=0.18215,
                                      pretrained_path=autoencoder_path))


# ---- builders -----------------------------------------------------------------------------------
def build_unet(cfg: DiffusionConfig):
    from diffusers import UNet2DConditionModel
    return UNet2DConditionModel(
        sample_size=cfg.latent_size, in_channels=cfg.unet_channels, out_channels=cfg.unet_channels,
        down_block_types=cfg.down_block_types, up_block_types=cfg.up_block_types,
        block_out_channels=cfg.block_out_channels, layers_per_block=cfg.layers_per_block,
        cross_attention_dim=cfg.text.hidden_size, attention_head_dim=cfg.attention_heads,
        norm_num_groups=cfg.norm_num_groups, use_linear_projection=cfg.use_linear_projection,
        addition_embed_type="text" if cfg.pooled_text_conditioning else None,
        addition_embed_type_num_heads=max(1, cfg.text.hidden_size // 64) if cfg.pooled_text_conditioning else 64)


class TextEncoder(nn.Module):
    """input_ids (B, L) -> per-token embeddings (B, L, D). Wraps a transformers CLIPTextModel."""

    def __init__(self, cfg: TextEncoderConfig):
        super().__init__()
        from transformers import CLIPTextConfig, CLIPTextModel
        if cfg.pretrained_path:
            self.model = CLIPTextModel.from_pretrained(cfg.pretrained_path, local_files_only=True)
        else:
            self.model = CLIPTextModel(CLIPTextConfig(
                vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_layers,
                num_attention_heads=cfg.num_heads, intermediate_size=cfg.intermediate_size or 4 * cfg.hidden_size,
                max_position_embeddings=cfg.max_length, hidden_act="gelu", pad_token_id=0, bos_token_id=1,
                eos_token_id=2))
        self.hidden_size = self.model.config.hidden_size

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        """input_ids (B, L) -> last hidden states (B, L, D)."""
        return self.model(input_ids=input_ids).last_hidden_state


def build_text_encoder(cfg: TextEncoderConfig) -> nn.Module:
    """The text encoder: any module mapping input_ids (B, L) to (B, L, cfg.hidden_size).

    Swap point: the repository's shared BERT encoder can be returned here instead.
    """
    return TextEncoder(cfg)


def build_autoencoder(cfg: AutoencoderConfig, image_channels: int = 3, image_size: int = 32):
    from diffusers import AutoencoderKL
    if cfg.pretrained_path:
        return AutoencoderKL.from_pretrained(cfg.pretrained_path, local_files_only=True)
    n = len(cfg.block_out_channels)
    return AutoencoderKL(in_channels=image_channels, out_channels=image_channels,
                         down_block_types=("DownEncoderBlock2D",) * n, up_block_types=("UpDecoderBlock2D",) * n,
                         block_out_channels=cfg.block_out_channels, layers_per_block=cfg.layers_per_block,
                         latent_channels=cfg.latent_channels, norm_num_groups=cfg.norm_num_groups,
                         sample_size=image_size, scaling_factor=cfg.scaling_factor,
                         mid_block_add_attention=cfg.mid_block_attention)


def build_noise_scheduler(cfg: DiffusionConfig):
    """The training scheduler (DDPM); samplers are built from its config."""
    from diffusers import DDPMScheduler
    return DDPMScheduler(num_train_timesteps=cfg.num_train_timesteps, beta_schedule=cfg.beta_schedule,
                         beta_start=cfg.beta_start, beta_end=cfg.beta_end, prediction_type=cfg.prediction_type,
                         clip_sample=not cfg.latent)


# ---- the model ----------------------------------------------------------------------------------
class TextToImageDiffusion(nn.Module):
    """UNet + text encoder (+ frozen autoencoder) + DDPM noise schedule.

    ``forward`` computes the training loss, so DDP / FSDP wrappers see it, and returns
    ``ModelOutput(logits=None, loss)`` like the other model families (the UNet's prediction is not
    a distribution's logits, so that field stays None; ``predict`` returns it): give ``images`` (B, C, S, S) in
    [-1, 1] or precomputed ``latents`` (B, c, s, s), and ``input_ids`` (B, L) or precomputed
    ``text_embeds`` (B, L, D). ``null_input_ids`` (L,) is the tokenized empty caption.
    """

    def __init__(self, cfg: DiffusionConfig, null_input_ids: torch.Tensor | None = None):
        super().__init__()
        self.cfg = cfg
        self.unet = build_unet(cfg)
        self.text_encoder = build_text_encoder(cfg.text)
        self.text_encoder.requires_grad_(cfg.train_text_encoder)
        self.autoencoder = None
        if cfg.latent:
            self.autoencoder = build_autoencoder(cfg.autoencoder, cfg.image_channels, cfg.image_size)
            self.autoencoder.requires_grad_(False)
        self.noise_scheduler = build_noise_scheduler(cfg)
        if null_input_ids is None:   # <bos> <eos> <pad>...: the WordTokenizer's empty caption
            null_input_ids = torch.zeros(cfg.text.max_length, dtype=torch.long)
            null_input_ids[:2] = torch.tensor([1, 2])
        self.register_buffer("null_input_ids", null_input_ids.long().reshape(1, -1), persistent=False)
        self.register_buffer("alphas_cumprod", self.noise_scheduler.alphas_cumprod.clone().float(), persistent=False)

    @property
    def blocks(self) -> list[nn.Module]:
        """The UNet's blocks, which FSDP shards one by one."""
        return [*self.unet.down_blocks, self.unet.mid_block, *self.unet.up_blocks]

    def num_params(self, trainable_only: bool = True) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    # ---- encoders --------------------------------------------------------------------------
    def encode_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, L) -> (B, L, D); no graph when the text encoder is frozen."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.cfg.train_text_encoder):
            return self.text_encoder(input_ids)

    def null_text_embeds(self, batch_size: int = 1) -> torch.Tensor:
        """The empty caption's embeddings, (B, L, D)."""
        return self.encode_text(self.null_input_ids).expand(batch_size, -1, -1)

    @torch.no_grad()
    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, C, S, S) in [-1, 1] -> what the UNet diffuses: the images, or scaled latents
        (B, c, S/f, S/f): a draw from the posterior when cfg.latent_sample (SD2 and the CommonCanvas
        stack, online or when precomputing), else its mean (online and precomputed latents agree)."""
        if self.autoencoder is None:
            return images
        posterior = self.autoencoder.encode(images).latent_dist
        z = posterior.sample() if self.cfg.latent_sample else posterior.mode()
        return z * self.cfg.autoencoder.scaling_factor

    @torch.no_grad()
    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """UNet space -> images in [-1, 1]."""
        if self.autoencoder is None:
            return x.clamp(-1, 1)
        return self.autoencoder.decode(x / self.cfg.autoencoder.scaling_factor).sample.clamp(-1, 1)

    # ---- diffusion -------------------------------------------------------------------------
    def predict(self, x_t: torch.Tensor, t: torch.Tensor, text_embeds: torch.Tensor) -> torch.Tensor:
        """The UNet's epsilon (or v) prediction, (B, c, s, s)."""
        return self.unet(x_t, t, encoder_hidden_states=text_embeds).sample

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        a = self.alphas_cumprod[t].to(x0.dtype).view(-1, *[1] * (x0.ndim - 1))
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def target(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.cfg.prediction_type == "epsilon":
            return noise
        a = self.alphas_cumprod[t].to(x0.dtype).view(-1, *[1] * (x0.ndim - 1))
        return a.sqrt() * noise - (1 - a).sqrt() * x0

    def forward(self, images: torch.Tensor | None = None, input_ids: torch.Tensor | None = None,
                latents: torch.Tensor | None = None, text_embeds: torch.Tensor | None = None,
                **_: Any) -> ModelOutput:
        """ModelOutput(None, loss): the diffusion training loss (a scalar), the MSE between the UNet's
        prediction and its target (min-SNR weighted when cfg.snr_gamma is set) at a random timestep.

        images (B, C, S, S) in [-1, 1] or latents (B, c, s, s); input_ids (B, L) or text_embeds (B, L, D)."""
        if (images is None) == (latents is None):
            raise ValueError("give exactly one of images or latents")
        if (input_ids is None) == (text_embeds is None):
            raise ValueError("give exactly one of input_ids or text_embeds")
        x0 = latents if latents is not None else self.encode_images(images)
        b = x0.shape[0]
        drop = torch.rand(b, device=x0.device) < self.cfg.caption_dropout if self.training else None
        if text_embeds is None:
            if drop is not None:
                input_ids = torch.where(drop[:, None], self.null_input_ids.expand(b, -1), input_ids)
            text_embeds = self.encode_text(input_ids)
        elif drop is not None:
            text_embeds = torch.where(drop[:, None, None], self.null_text_embeds(b).to(text_embeds.dtype), text_embeds)
        t = torch.randint(0, self.cfg.num_train_timesteps, (b,), device=x0.device)
        noise = torch.randn_like(x0)
        pred = self.predict(self.add_noise(x0, noise, t), t, text_embeds)
        err = (pred.float() - self.target(x0, noise, t).float()).pow(2).mean(dim=tuple(range(1, x0.ndim)))
        loss = err.mean() if self.cfg.snr_gamma is None else (err * self.min_snr_weight(t)).mean()
        return ModelOutput(None, loss)

    def min_snr_weight(self, t: torch.Tensor) -> torch.Tensor:
        """Min-SNR-gamma weights (B,): min(SNR, gamma) / SNR for epsilon, / (SNR + 1) for v."""
        a = self.alphas_cumprod[t]
        snr = a / (1 - a)
        clipped = snr.clamp(max=self.cfg.snr_gamma)
        return clipped / (snr if self.cfg.prediction_type == "epsilon" else snr + 1)


def diffusion_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
    """The shared trainer's loss_fn: calls the (possibly wrapped) model's forward on the batch."""
    return model(**batch).loss, {}


# ---- sampling -----------------------------------------------------------------------------------
def classifier_free_guidance(pred_uncond: torch.Tensor, pred_cond: torch.Tensor, guidance_scale: float) -> torch.Tensor:
    """e_uncond + w (e_cond - e_uncond): w = 1 is the conditional model, w = 0 the unconditional one."""
    return pred_uncond + guidance_scale * (pred_cond - pred_uncond)


def build_sampler(model: TextToImageDiffusion, name: str = "ddim"):
    """A diffusers sampling scheduler sharing the training noise schedule."""
    from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler
    classes = {"ddim": DDIMScheduler, "ddpm": DDPMScheduler, "dpm++": DPMSolverMultistepScheduler,
               "euler": EulerDiscreteScheduler}
    if name not in classes:
        raise ValueError(f"unknown sampler {name!r}; choose one of {SAMPLERS}")
    return classes[name].from_config(model.noise_scheduler.config)


@torch.no_grad()
def generate(model: TextToImageDiffusion, input_ids: torch.Tensor | None = None,
             text_embeds: torch.Tensor | None = None, num_inference_steps: int = 20, guidance_scale: float = 3.0,
             sampler: str = "ddim", generator: torch.Generator | None = None, batch_size: int = 256) -> torch.Tensor:
    """Images (B, C, S, S) in [-1, 1] for captions given as input_ids (B, L) or text_embeds (B, L, D).

    Classifier-free guidance runs the unconditional and conditional predictions in one batched UNet
    call; guidance_scale == 1 skips the unconditional half.
    """
    if (input_ids is None) == (text_embeds is None):
        raise ValueError("give exactly one of input_ids or text_embeds")
    was_training = model.training
    model.eval()
    try:
        n = len(input_ids if input_ids is not None else text_embeds)
        out = []
        for start in range(0, n, batch_size):
            if input_ids is not None:
                cond = model.encode_text(input_ids[start:start + batch_size])
            else:
                cond = text_embeds[start:start + batch_size]
            out.append(_sample_batch(model, cond, num_inference_steps, guidance_scale, sampler, generator))
        return torch.cat(out)
    finally:
        model.train(was_training)


def _sample_batch(model, cond, num_inference_steps, guidance_scale, sampler, generator):
    b, device = cond.shape[0], cond.device
    scheduler = build_sampler(model, sampler)
    scheduler.set_timesteps(num_inference_steps, device=device)
    c, s = model.cfg.unet_channels, model.cfg.latent_size
    x = torch.randn((b, c, s, s), generator=generator, device="cpu").to(device) * scheduler.init_noise_sigma
    guided = guidance_scale != 1.0
    context = torch.cat([model.null_text_embeds(b).to(cond.dtype), cond]) if guided else cond
    for t in scheduler.timesteps:
        x_in = scheduler.scale_model_input(x, t)
        x_in = torch.cat([x_in, x_in]) if guided else x_in
        pred = model.predict(x_in, t.expand(x_in.shape[0]).to(device), context)
        if guided:
            pred = classifier_free_guidance(*pred.chunk(2), guidance_scale)
        x = scheduler.step(pred, t, x, generator=generator).prev_sample
    return model.decode(x)


# ---- autoencoder training -------------------------------------------------------------------------
def autoencoder_loss(model: nn.Module, batch: dict[str, torch.Tensor], kl_weight: float = 1e-4
                     ) -> tuple[torch.Tensor, dict]:
    """Reconstruction MSE + kl_weight * KL(q(z|x) || N(0, I)) for a diffusers AutoencoderKL.

    batch["images"]: (B, C, S, S) in [-1, 1]. A trainer loss_fn (bind kl_weight with partial).
    """
    x = batch["images"]
    posterior = model.encode(x).latent_dist
    recon = model.decode(posterior.sample()).sample
    rec = F.mse_loss(recon.float(), x.float())
    kl = posterior.kl().mean() / x[0].numel()
    return rec + kl_weight * kl, {"reconstruction_mse": rec.detach(), "kl": kl.detach()}
