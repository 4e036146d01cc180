"""Text-to-image diffusion on generated scenes (smoke / small scale): components and evaluation.

The components are trained once (papers/commoncanvas/01_components, by scene_experiments) and loaded
by every later notebook: the autoencoder of latent diffusion, the recognizer that scores caption consistency, the
feature network of FID, the scene config and the word tokenizer.

    comps = load_components(folder)
    model = build_scene_t2i(comps, {"block_out_channels": [32, 64], ...})   # TextToImageDiffusion
    history, ema = train_diffusion(model, scene_training_data(model, comps, data), TrainConfig(...), 32)
    scores = evaluate_t2i(model, comps, prompts, real, ema=ema)   # {"fid", "consistency_mean", ...}
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from collections.abc import Mapping

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from papers.commoncanvas.diffusion_speedups import precompute_latents_and_text, set_attention
from papers.commoncanvas.image_metrics import caption_consistency, fid, recognizer_feature_fn
from papers.commoncanvas.scene_recognizer import RecognizerConfig, SceneRecognizer
from papers.commoncanvas.scenes import SceneConfig, SceneData, WordTokenizer
from shared.models.diffusion import (AutoencoderConfig, DiffusionConfig, TextToImageDiffusion, build_autoencoder,
                                     generate)
from shared.utils.config import from_dict

CONFIG_FILE = "components.json"


@dataclass
class SceneComponents:
    scene: SceneConfig
    tokenizer: WordTokenizer
    autoencoder_cfg: AutoencoderConfig
    autoencoder: nn.Module
    recognizer: SceneRecognizer
    feature_net: SceneRecognizer


def new_components(scene: SceneConfig, autoencoder_cfg: AutoencoderConfig, recognizer_cfg: dict[str, Any],
                   feature_cfg: dict[str, Any], max_length: int = 12, seed: int = 0) -> SceneComponents:
    """Untrained components for ``scene`` (recognizer/feature configs: RecognizerConfig fields)."""
    torch.manual_seed(seed)
    n = scene.num_classes()
    return SceneComponents(
        scene=scene, tokenizer=WordTokenizer(scene.vocabulary(), max_length=max_length),
        autoencoder_cfg=autoencoder_cfg,
        autoencoder=build_autoencoder(autoencoder_cfg, 3, scene.image_size),
        recognizer=SceneRecognizer(RecognizerConfig(image_size=scene.image_size, num_classes=n, **recognizer_cfg)),
        feature_net=SceneRecognizer(RecognizerConfig(image_size=scene.image_size, num_classes=n, **feature_cfg)))


@torch.no_grad()
def latent_scaling_factor(autoencoder: nn.Module, images: torch.Tensor) -> float:
    """1 / std of the posterior means over ``images``: scales latents to unit variance (SD's 0.18215
    was found the same way for its autoencoder)."""
    autoencoder.eval()
    return float(1.0 / autoencoder.encode(images).latent_dist.mode().std())


def save_components(comps: SceneComponents, folder: str | Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("autoencoder", "recognizer", "feature_net"):
        sd = {k: v.detach().contiguous().cpu() for k, v in getattr(comps, name).state_dict().items()}
        save_file(sd, str(folder / f"{name}.safetensors"))
    meta = {"scene": asdict(comps.scene), "max_length": comps.tokenizer.max_length,
            "autoencoder": asdict(comps.autoencoder_cfg),
            "recognizer": _net_fields(comps.recognizer), "feature_net": _net_fields(comps.feature_net)}
    (folder / CONFIG_FILE).write_text(json.dumps(meta, indent=1))
    return folder


def _net_fields(net: SceneRecognizer) -> dict[str, Any]:
    """RecognizerConfig fields other than those the scene config determines."""
    return {k: v for k, v in asdict(net.cfg).items() if k not in ("num_classes", "image_size")}


def load_components(folder: str | Path) -> SceneComponents:
    folder = Path(folder)
    if not (folder / CONFIG_FILE).exists():
        raise FileNotFoundError(f"no {CONFIG_FILE} in {folder}: run papers/commoncanvas/01_components first "
                                "(at the same scale), or point components_dir at its output")
    meta = json.loads((folder / CONFIG_FILE).read_text())
    ae_cfg = from_dict(AutoencoderConfig, meta["autoencoder"])
    comps = new_components(SceneConfig.from_dict(meta["scene"]), ae_cfg, meta["recognizer"], meta["feature_net"],
                           meta["max_length"])
    for name in ("autoencoder", "recognizer", "feature_net"):
        module = getattr(comps, name)
        module.load_state_dict(load_file(str(folder / f"{name}.safetensors")))
        module.eval().requires_grad_(False)
    return comps


def scene_t2i_config(model_cfg: Mapping[str, Any], image_size: int, autoencoder_cfg: AutoencoderConfig,
                     vocab_size: int, max_length: int) -> DiffusionConfig:
    """The DiffusionConfig of a latent scene model: ``model_cfg`` holds DiffusionConfig fields (``text`` as
    a dict of TextEncoderConfig fields without vocab_size / max_length, which come from the tokenizer)."""
    cfg = dict(model_cfg)
    text = dict(cfg.pop("text", {}), vocab_size=vocab_size, max_length=max_length)
    return DiffusionConfig.from_dict({**cfg, "image_size": image_size, "latent": True,
                                      "autoencoder": AutoencoderConfig(**asdict(autoencoder_cfg)), "text": text})


def build_scene_t2i(comps: SceneComponents, model_cfg: Mapping[str, Any], seed: int = 0) -> TextToImageDiffusion:
    """A latent TextToImageDiffusion on the components' trained autoencoder and tokenizer.

    ``model_cfg``: DiffusionConfig fields (``text`` as a dict of TextEncoderConfig fields, without
    vocab_size / max_length, which come from the tokenizer).
    """
    dc = scene_t2i_config(model_cfg, comps.scene.image_size, comps.autoencoder_cfg, comps.tokenizer.vocab_size,
                          comps.tokenizer.max_length)
    torch.manual_seed(seed)
    model = TextToImageDiffusion(dc, null_input_ids=comps.tokenizer.encode([""])[0][0])
    model.autoencoder.load_state_dict(comps.autoencoder.state_dict())
    set_attention(model, "sdpa")
    return model


def scene_training_data(model: TextToImageDiffusion, comps: SceneComponents,
                        data: SceneData) -> dict[str, torch.Tensor]:
    """Training tensors for ``data``'s images and captions: precomputed latents, and precomputed text
    embeddings when the text encoder is frozen (else the token ids)."""
    ids = comps.tokenizer.encode(data.captions)[0]
    images = data.float_images()
    if not model.cfg.train_text_encoder:
        return precompute_latents_and_text(model, images, ids)
    latents = torch.cat([model.encode_images(images[s:s + 512]) for s in range(0, len(images), 512)])
    return {"latents": latents, "input_ids": ids}


def sample_images(model: TextToImageDiffusion, comps: SceneComponents, captions: list[str], ema=None,
                  num_inference_steps: int = 10, guidance_scale: float = 3.0, seed: int = 0) -> torch.Tensor:
    """Images (N, 3, S, S) in [-1, 1] for ``captions``, with the EMA weights if given."""
    ids = comps.tokenizer.encode(captions)[0]
    gen = torch.Generator().manual_seed(seed)
    if ema is None:
        return generate(model, input_ids=ids, num_inference_steps=num_inference_steps,
                        guidance_scale=guidance_scale, generator=gen)
    with ema.applied(model):
        return generate(model, input_ids=ids, num_inference_steps=num_inference_steps,
                        guidance_scale=guidance_scale, generator=gen)


def evaluate_t2i(model: TextToImageDiffusion, comps: SceneComponents, prompts: SceneData, real: SceneData,
                 ema=None, num_inference_steps: int = 10, guidance_scale: float = 3.0, seed: int = 0
                 ) -> dict[str, float]:
    """Generate one image per prompt caption; FID against ``real`` under the feature network, and
    caption consistency (per attribute, mean, all) under the recognizer."""
    images = sample_images(model, comps, prompts.captions, ema, num_inference_steps, guidance_scale, seed)
    out = {"fid": fid(recognizer_feature_fn(comps.feature_net), real.float_images(), images)}
    consistency = caption_consistency(comps.recognizer, images, prompts.labels)
    out.update({f"consistency_{k}": v for k, v in consistency.items()})
    return out


def save_t2i(model: TextToImageDiffusion, path: str | Path, ema=None) -> Path:
    """The model's weights (the EMA weights if given) and its config, for later sampling."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if ema is not None:
        with ema.applied(model):
            sd = {k: v.detach().contiguous().cpu().clone() for k, v in model.state_dict().items()}
    else:
        sd = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(sd, str(path), metadata={"config": json.dumps(model.cfg.to_dict())})
    return path


def load_t2i(path: str | Path, comps: SceneComponents) -> TextToImageDiffusion:
    with safe_open(str(path), "pt") as f:
        cfg = DiffusionConfig.from_dict(json.loads(f.metadata()["config"]))
    model = TextToImageDiffusion(cfg, null_input_ids=comps.tokenizer.encode([""])[0][0])
    model.load_state_dict(load_file(str(path)))
    set_attention(model, "sdpa")
    return model.eval()
