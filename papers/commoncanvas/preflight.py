"""Preflight plans of the CommonCanvas notebooks (``python -m shared.preflight commoncanvas``).

sd2_full_scale: one training per resolution phase (text_to_image.train_phases), the UNet trained and
the text tower too unless it is read from data_dir; the autoencoder (and a read text tower) run
forward only, or, with ``precompute_latents``, stay in memory but run no forward per step (the one
encoding pass per phase, one encoder forward per record rather than per sample, is not in the plan).
Costs come from a meta-device trace of one sample (shared.preflight.traced_cost).
01_components trains the scene autoencoder, recognizer and FID feature network; 02_telephoning the
captioner and the latent scene text-to-image model (its tokenizer is the scenes' word-level one:
``SCENE_VOCAB`` / ``SCENE_MAX_LENGTH`` stand in for its size). These train in the notebook's
process (parallelism none). 03_data_scarcity trains 02's text-to-image model once per data-set size, each
a job of shared.train.jobs on one GPU. speedups times steps: no training runs.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from papers.commoncanvas.image_captions import coco_image_dir
from papers.commoncanvas.scales import NOTEBOOKS
from papers.commoncanvas.scene_recognizer import RecognizerConfig, SceneRecognizer
from papers.commoncanvas.scene_t2i import scene_t2i_config
from papers.commoncanvas.text_to_image import diffusion_model_config
from shared.models.diffusion import build_autoencoder, build_text_encoder, build_unet
from shared.preflight import DataRequirement, TrainingRunPlan, World, run_plan, scale_of, traced_cost
from shared.preflight.estimate import distinct_params

CLIP_VOCAB = 49408     # OpenCLIP / CLIP BPE, SD2's tokenizer
SCENE_VOCAB, SCENE_MAX_LENGTH = 64, 12   # the scene captions' word-level tokenizer (a few dozen words)


class _Encode(nn.Module):
    """The autoencoder's encoder as a module: images (B, 3, H, W) -> latent distribution parameters."""

    def __init__(self, autoencoder: nn.Module):
        super().__init__()
        self.autoencoder = autoencoder

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.autoencoder.encode(images).latent_dist.mean


class _Reconstruct(nn.Module):
    """The autoencoder's training forward: images (B, 3, H, W) -> reconstructions (B, 3, H, W)."""

    def __init__(self, autoencoder: nn.Module):
        super().__init__()
        self.autoencoder = autoencoder

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.autoencoder(images).sample


def _net_train(net) -> dict:
    """A scene network's NetTrainSpec / CaptionerSpec as TrainConfig fields (one process, AdamW)."""
    return {"max_steps": net.max_steps, "global_batch_size": None, "micro_batch_size": net.global_batch_size,
            "optimizer": "adamw", "lr": net.lr, "precision": "bf16", "parallelism": "none"}


def _traced(name: str, build, inputs, **kwargs):
    with torch.device("meta"):
        module = build()
        return traced_cost(name, module, inputs(), **kwargs)


def _recognizer_cost(name: str, size: int, channels, feature_dim: int):
    cfg = RecognizerConfig(image_size=size, channels=tuple(channels), feature_dim=feature_dim)
    return _traced(name, lambda: SceneRecognizer(cfg), lambda: (torch.empty(1, 3, size, size),))


def _components_plans(spec) -> list[TrainingRunPlan]:
    size = spec.scene.image_size
    autoencoder = _traced("autoencoder", lambda: _Reconstruct(build_autoencoder(spec.autoencoder, 3, size)),
                          lambda: (torch.empty(1, 3, size, size),))
    return [run_plan("autoencoder", autoencoder, _net_train(spec.autoencoder_train)),
            run_plan("recognizer", _recognizer_cost("recognizer", size, spec.recognizer.channels,
                                                    spec.recognizer.feature_dim),
                     _net_train(spec.recognizer_train)),
            run_plan("feature net", _recognizer_cost("feature net", size, spec.feature_net.channels,
                                                     spec.feature_net.feature_dim),
                     _net_train(spec.feature_train))]


def _scene_t2i(spec, scale: str):
    """(cost, TrainConfig fields) of one scene text-to-image training of a 02_telephoning spec."""
    components = NOTEBOOKS["01_components"].build(scale)
    size = components.scene.image_size
    cfg = scene_t2i_config(spec.model, size, components.autoencoder, SCENE_VOCAB, SCENE_MAX_LENGTH)
    train = {"max_steps": spec.train.max_steps, "global_batch_size": None,
             "micro_batch_size": spec.train.global_batch_size, "optimizer": "adamw", "lr": spec.train.lr,
             "precision": "bf16", "parallelism": "none"}
    return _diffusion_cost("scene t2i", cfg, size), train


def _telephoning_plans(spec) -> list[TrainingRunPlan]:
    components = NOTEBOOKS["01_components"].build(scale_of(NOTEBOOKS["02_telephoning"], spec))
    size = components.scene.image_size
    captioner = _recognizer_cost("captioner", size, spec.captioner.channels, spec.captioner.feature_dim)
    cost, train = _scene_t2i(spec, scale_of(NOTEBOOKS["02_telephoning"], spec))
    return [run_plan("captioner", captioner, _net_train(spec.captioner)), run_plan("scene t2i", cost, train)]


def _scarcity_plans(spec) -> list[TrainingRunPlan]:
    """One job per data-set size, each 02_telephoning's text-to-image training on the first n images (the size
    equal to 02's own image count, when it is the largest, reuses 02's model and trains nothing)."""
    scale = scale_of(NOTEBOOKS["03_data_scarcity"], spec)
    telephoning = NOTEBOOKS["02_telephoning"].build(scale)
    cost, train = _scene_t2i(telephoning, scale)
    pool = max(max(spec.sizes), telephoning.unlabelled_images)
    return [run_plan(f"scene t2i, {n} images", cost, train, note="a job (shared.train.jobs), one GPU")
            for n in spec.sizes if not n == telephoning.unlabelled_images == pool]


def _diffusion_cost(name: str, cfg, resolution: int, encoders: bool = True):
    """The cost of one image through a text-to-image step (UNet trained, the text tower trained or not,
    the autoencoder's encoder forward only; neither frozen encoder when ``encoders`` is False, i.e. with
    precomputed latents and text embeddings), from a meta-device trace."""
    with torch.device("meta"):
        unet, text = build_unet(cfg), build_text_encoder(cfg.text)
        size, channels, length = cfg.latent_size, cfg.unet_channels, cfg.text.max_length
        ids = torch.zeros(1, length, dtype=torch.long)
        unet_in = (torch.empty(1, channels, size, size), torch.zeros(1, dtype=torch.long),
                   torch.empty(1, length, cfg.text.hidden_size))
        frozen = []
        if cfg.latent:
            vae = build_autoencoder(cfg.autoencoder, cfg.image_channels, cfg.image_size)
            frozen.append((_Encode(vae), (torch.empty(1, cfg.image_channels, resolution, resolution),)))
        text_part = [(text, (ids,))]
        blocks = list(unet.down_blocks) + [unet.mid_block] + list(unet.up_blocks)
        kwargs = {"also_trained": text_part} if cfg.train_text_encoder else {"frozen": frozen + text_part}
        if cfg.train_text_encoder:
            kwargs["frozen"] = frozen
        if encoders or cfg.train_text_encoder:
            return traced_cost(name, unet, unet_in, blocks=blocks, **kwargs)
        # precomputed: the frozen encoders stay in memory (the empty caption's embeddings, sampling) but
        # run no forward per step
        cost = traced_cost(name, unet, unet_in, blocks=blocks)
        frozen_params = sum(distinct_params(m) for m, _ in frozen + text_part)
        return dataclasses.replace(cost, params=cost.params + frozen_params)


def _phase_cost(spec, resolution: int):
    """The cost of one image at ``resolution`` in sd2_full_scale."""
    cfg = diffusion_model_config(spec.model, CLIP_VOCAB, resolution, spec.max_length)
    cfg = dataclasses.replace(cfg, train_text_encoder=not spec.text_encoder_path)
    return _diffusion_cost(f"sd2 {resolution}px", cfg, resolution, encoders=not spec.precompute_latents)


def plan(notebook: str, spec, world: World) -> list[TrainingRunPlan]:
    """sd2_full_scale: one plan per resolution phase; 01 and 02: one per network they train; 03: one per size."""
    if notebook == "01_components":
        return _components_plans(spec)
    if notebook == "02_telephoning":
        return _telephoning_plans(spec)
    if notebook == "03_data_scarcity":
        return _scarcity_plans(spec)
    if notebook != "sd2_full_scale":
        return []
    plans = []
    for phase in spec.phases:
        cost = _phase_cost(spec, phase.resolution)
        plans.append(run_plan(phase.name, cost, spec.train, max_steps=phase.max_steps,
                              note="starts from the previous phase's weights" if plans else ""))
    return plans


def requirements(notebook: str, spec) -> list[DataRequirement]:
    """sd2_full_scale: the caption manifest, the local tokenizer / text tower / autoencoder folders and the
    evaluation's files."""
    if notebook != "sd2_full_scale" or not spec.needs_data_dir:
        return []
    reqs = [DataRequirement(spec.manifest, "jsonl", "image + caption manifest")]
    if spec.tokenizer_path:
        reqs.append(DataRequirement(spec.tokenizer_path, "dir", "tokenizer"))
    for path, what in ((spec.text_encoder_path, "text encoder"), (spec.autoencoder_path, "autoencoder")):
        if path:
            reqs.append(DataRequirement(path, "hf_checkpoint", what))
    return reqs + evaluation_requirements(spec.evaluation)


def evaluation_requirements(evaluation) -> list[DataRequirement]:
    """The files a GenerationEvalSpec reads: its caption set (a COCO captions .json and COCO's image
    folder beside it, or a .jsonl manifest), the FID Inception weights and the CLIP folder."""
    if evaluation is None:
        return []
    if evaluation.manifest.endswith(".json"):
        reqs = [DataRequirement(evaluation.manifest, "json", "COCO captions (evaluation)"),
                DataRequirement(str(coco_image_dir(evaluation.manifest)), "dir", "COCO images (evaluation)")]
    else:
        reqs = [DataRequirement(evaluation.manifest, "jsonl", "image + caption manifest (evaluation)")]
    if evaluation.fid_weights:
        reqs.append(DataRequirement(evaluation.fid_weights, "file", "FID Inception-v3 weights"))
    if evaluation.clip_dir:
        reqs.append(DataRequirement(evaluation.clip_dir, "hf_checkpoint", "CLIP (CLIP score)"))
    return reqs
