"""The training runs of the scene notebooks (01_components, 02_telephoning, 03_data_scarcity), one
function per run, so the notebooks hold only parameters, calls, figures and claims.

    comps = new_components(spec.scene, ...)
    train_scorers(comps, spec, noisy, seed, device, train_dir)          # recognizer + FID feature network
    ae_history, ae_images = train_scene_autoencoder(comps, spec, seed, device, train_dir)
    captioner = train_captioner(scene, spec.captioner, labelled, seed, device, run_dir)
    result, history, model = train_and_evaluate_t2i(comps, spec.model, spec.train, spec.eval, data, prompts, ...)
    scores = evaluate_saved_t2i(model_path, comps, spec.eval, other_prompts, seed, device)

03_data_scarcity's runs, one per data-set size, are jobs of shared.train.jobs (scene_jobs.py).

Every run seeds as the notebooks always did (torch.manual_seed before each network's training, the
Trainer's seed for its batches), so results are the same as when these steps were notebook cells.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any
from collections.abc import Mapping

import numpy as np
import torch

from papers.commoncanvas.scales import CaptionerSpec, ComponentsSpec, NetTrainSpec, T2IEvalSpec, T2ITrainSpec
from papers.commoncanvas.scene_recognizer import RecognizerConfig, SceneRecognizer
from papers.commoncanvas.scene_t2i import (SceneComponents, build_scene_t2i, evaluate_t2i, latent_scaling_factor,
                                           load_t2i, save_t2i, scene_training_data)
from papers.commoncanvas.scenes import SceneConfig, SceneData, generate_scenes
from papers.commoncanvas.text_to_image import train_autoencoder, train_diffusion, train_recognizer
from shared.models.diffusion import TextToImageDiffusion
from shared.train import History, TrainConfig


# ---- 01_components ----------------------------------------------------------------------------------
def helper_train_config(spec: NetTrainSpec, seed: int, device: str, run_dir: str | Path) -> TrainConfig:
    """The TrainConfig of a helper network (recognizer, feature network, autoencoder)."""
    return TrainConfig(max_steps=spec.max_steps, lr=spec.lr, warmup_steps=20, precision="bf16", device=device,
                       seed=seed, progress_bar=False, log_every=25, run_dir=str(run_dir))


def mixed_scenes(n: int, clean: SceneConfig, noisy: SceneConfig, seed: int) -> SceneData:
    """``n`` scenes, half rendered with ``clean`` (seed) and half with ``noisy`` (seed + 1)."""
    return SceneData.concat([generate_scenes(n // 2, clean, seed=seed),
                             generate_scenes(n - n // 2, noisy, seed=seed + 1)])


def train_scorers(comps: SceneComponents, spec: ComponentsSpec, noisy: SceneConfig, seed: int, device: str,
                  train_dir: str | Path) -> None:
    """Train the recognizer and the FID feature network in place (half clean, half noisy scenes); both end
    on the CPU in eval mode."""
    train_dir = Path(train_dir)
    for name, net, train, data_seed, torch_seed in (
            ("recognizer", comps.recognizer, spec.recognizer_train, 100 + seed, seed),
            ("feature_net", comps.feature_net, spec.feature_train, 200 + seed, seed + 1)):
        data = mixed_scenes(train.images, comps.scene, noisy, data_seed)
        torch.manual_seed(torch_seed)
        train_recognizer(net, {"images": data.float_images(), **data.labels},
                         helper_train_config(train, seed, device, train_dir / name), train.global_batch_size)
    comps.recognizer.cpu().eval()
    comps.feature_net.cpu().eval()


def train_scene_autoencoder(comps: SceneComponents, spec: ComponentsSpec, seed: int, device: str,
                            train_dir: str | Path) -> tuple[History, torch.Tensor]:
    """Train the autoencoder in place on clean scenes and set its latent scaling factor (1 / std of the
    latents of up to 1000 training images). Returns its History and the training images (N, 3, S, S)."""
    train = spec.autoencoder_train
    images = generate_scenes(train.images, comps.scene, seed=300 + seed).float_images()
    history = train_autoencoder(comps.autoencoder, images, helper_train_config(train, seed, device,
                                                                               Path(train_dir) / "autoencoder"),
                                train.global_batch_size, kl_weight=train.kl_weight)
    comps.autoencoder.cpu().eval()
    comps.autoencoder_cfg.scaling_factor = latent_scaling_factor(comps.autoencoder, images[:1000])
    return history, images


@torch.no_grad()
def reconstruct(comps: SceneComponents, images: torch.Tensor) -> torch.Tensor:
    """The autoencoder's reconstructions (N, 3, S, S) in [-1, 1] of images (N, 3, S, S) in [-1, 1]."""
    ae = comps.autoencoder
    return ae.decode(ae.encode(images).latent_dist.mode()).sample.clamp(-1, 1)


# ---- 02_telephoning ---------------------------------------------------------------------------------
def train_captioner(scene: SceneConfig, spec: CaptionerSpec, labelled: SceneData, seed: int, device: str,
                    run_dir: str | Path) -> SceneRecognizer:
    """A SceneRecognizer trained on the labelled split: it captions other images (on the CPU on return)."""
    torch.manual_seed(seed)
    captioner = SceneRecognizer(RecognizerConfig(image_size=scene.image_size, channels=spec.channels,
                                                 feature_dim=spec.feature_dim, num_classes=scene.num_classes()))
    train_recognizer(captioner, {"images": labelled.float_images(), **labelled.labels},
                     TrainConfig(max_steps=spec.max_steps, lr=spec.lr, warmup_steps=10, seed=seed, device=device,
                                 progress_bar=False, log_every=25, run_dir=str(run_dir)),
                     spec.global_batch_size)
    return captioner.cpu()


# ---- 02_telephoning and 03_data_scarcity ------------------------------------------------------------
def train_and_evaluate_t2i(comps: SceneComponents, model_cfg: Mapping[str, Any], train: T2ITrainSpec,
                           evaluation: T2IEvalSpec, data: SceneData, prompts: SceneData, seed: int, device: str,
                           run_dir: str | Path, model_path: str | Path, resume: bool = False
                           ) -> tuple[dict[str, float], History, TextToImageDiffusion]:
    """Train one scene text-to-image model on ``data`` (its images and captions), score its samples for
    ``prompts`` (FID against the prompts' real images, caption consistency), save its EMA weights at
    ``model_path``. Returns ({fid, consistency_*, train_s, final_loss}, History, model).

    A checkpoint (with the EMA weights) every ``train.checkpoint_every`` steps goes to run_dir/checkpoints;
    ``resume``: go on from the latest one there (a job restarted after a preemption), else start afresh
    (run_dir emptied first)."""
    t0 = time.time()
    model = build_scene_t2i(comps, dict(model_cfg), seed=seed).to(device)
    train_data = {k: v.cpu() for k, v in scene_training_data(model, comps, data).items()}
    config = TrainConfig(max_steps=train.max_steps, lr=train.lr, warmup_steps=train.warmup_steps, seed=seed,
                         device=device, progress_bar=False, log_every=10, run_dir=str(run_dir),
                         checkpoint_every=train.checkpoint_every, keep_last_n=1)
    history, ema = train_diffusion(model, train_data, config, train.global_batch_size,
                                   ema_half_life=train.ema_half_life, fresh=not resume)
    train_s = time.time() - t0
    scores = evaluate_t2i(model, comps, prompts, prompts, ema=ema, num_inference_steps=evaluation.sampling_steps,
                          guidance_scale=evaluation.guidance_scale, seed=seed)
    save_t2i(model, model_path, ema=ema)
    result = {**scores, "train_s": train_s, "final_loss": float(np.mean(history.losses[-10:]))}
    return result, history, model


def evaluate_saved_t2i(model_path: str | Path, comps: SceneComponents, evaluation: T2IEvalSpec, prompts: SceneData,
                       seed: int, device: str) -> dict[str, float]:
    """Score a saved (EMA) scene model's samples for ``prompts``: {fid, consistency_*} as train_and_evaluate_t2i."""
    model = load_t2i(model_path, comps).to(device)
    return evaluate_t2i(model, comps, prompts, prompts, num_inference_steps=evaluation.sampling_steps,
                        guidance_scale=evaluation.guidance_scale, seed=seed)


def styled(scene: SceneConfig, style: Mapping[str, Any]) -> SceneConfig:
    """``scene`` with some rendering fields replaced (e.g. {"background_noise": 25.0})."""
    return dataclasses.replace(scene, **style)
