"""The full-scale quality evaluation of a text-to-image model: captions of a held-out image set (COCO
captions, as the paper and SD2 evaluate), images generated from them, and FID / KID against the real
images plus the CLIP score of each generated image with its caption.

    spec = GenerationEvalSpec(manifest="coco/val2014_30k.jsonl", images=30000, fid_weights="fid/pt_inception.pth",
                              clip_dir="clip-vit-large-patch14")
    scores = evaluate_generation(model, tokenizer, data_dir, spec, seed=0)   # {"fid", "kid", "kid_std", "clip_score", "n"}

The manifest is read by ``image_captions.read_manifest`` (one image and one caption per row; COCO's
five captions per image give five rows, of which ``evaluate_generation`` keeps the first per image).
FID uses the FID Inception-v3 read from ``fid_weights`` (``fid_inception``), KID the same features, the
CLIP score a local transformers CLIP (``image_metrics.load_clip``); nothing is downloaded.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from shared.models.diffusion import generate
from shared.utils.config import StrictConfig

from .image_captions import load_image, read_manifest
from .image_metrics import (FeatureFn, clip_score, extract_features, frechet_distance_of_features,
                            inception_feature_fn, kid_from_features, load_clip)


@dataclass
class GenerationEvalSpec(StrictConfig):
    """manifest: image-caption rows of the evaluation set, relative to data_dir; images: how many distinct
    images (a seeded uniform draw; all when None or larger); fid_weights / clip_dir: relative to data_dir
    (None: that score is skipped); resolution: real and generated images; micro_batch_size: captions per
    generation call and images per scoring forward."""
    manifest: str
    images: int | None = 30_000
    fid_weights: str | None = "fid/pt_inception-2015-12-05-6726825d.pth"
    clip_dir: str | None = "clip-vit-large-patch14"
    resolution: int = 512
    sampling_steps: int = 50
    guidance_scale: float = 3.0
    micro_batch_size: int = 32
    kid_subsets: int = 100
    kid_subset_size: int = 1000


def first_caption_per_image(records: Sequence, n: int | None, seed: int = 0) -> list:
    """One record per distinct image (its first caption), then a seeded uniform draw of ``n`` of them."""
    seen, unique = set(), []
    for r in records:
        if str(r.image) not in seen:
            seen.add(str(r.image))
            unique.append(r)
    if n is None or n >= len(unique):
        return unique
    keep = np.sort(np.random.default_rng(seed).permutation(len(unique))[:n])
    return [unique[i] for i in keep]


def score_images(real: torch.Tensor, generated: torch.Tensor, captions: Sequence[str], *,
                 feature_fn: FeatureFn | None, clip: tuple | None, kid_subsets: int = 100,
                 kid_subset_size: int = 1000, batch_size: int = 32) -> dict[str, float]:
    """FID and KID of ``generated`` against ``real`` (N, 3, S, S) in [-1, 1] under ``feature_fn``, and the
    CLIP score of ``generated`` with ``captions`` under ``clip`` = (CLIPModel, tokenizer); a score whose
    network is None is left out."""
    out: dict[str, float] = {"n": float(len(generated))}
    if feature_fn is not None:
        f_real = extract_features(feature_fn, real, batch_size).double()           # (N, D)
        f_gen = extract_features(feature_fn, generated, batch_size).double()
        out["fid"] = frechet_distance_of_features(f_real.numpy(), f_gen.numpy())
        out["kid"], out["kid_std"] = kid_from_features(f_real, f_gen, kid_subsets, kid_subset_size)
    if clip is not None:
        out["clip_score"] = clip_score(clip[0], clip[1], generated, list(captions), batch_size=batch_size)
    return out


def evaluate_generation(model, tokenizer, data_dir: str | Path, spec: GenerationEvalSpec, *, seed: int = 0,
                        device: str | None = None,
                        progress: Callable[[int, int], None] | None = None) -> dict[str, float]:
    """Generate one image per evaluation caption with ``model`` (a TextToImageDiffusion and its caption
    tokenizer) and score the set (``score_images``)."""
    data_dir = Path(data_dir)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    records = first_caption_per_image(read_manifest(data_dir / spec.manifest), spec.images, seed)
    captions = [r.caption for r in records]
    real = torch.stack([load_image(r.image, spec.resolution) for r in records])           # (N, 3, R, R)
    model.to(device)
    generator = torch.Generator().manual_seed(seed)
    generated = []
    for start in range(0, len(captions), spec.micro_batch_size):
        ids = tokenizer.encode(captions[start:start + spec.micro_batch_size])[0].to(device)
        generated.append(generate(model, input_ids=ids, num_inference_steps=spec.sampling_steps,
                                  guidance_scale=spec.guidance_scale, generator=generator).float().cpu())
        if progress is not None:
            progress(min(start + spec.micro_batch_size, len(captions)), len(captions))
    images = torch.nn.functional.interpolate(torch.cat(generated), size=real.shape[-2:], mode="bilinear",
                                             align_corners=False)                          # (N, 3, R, R)
    features = None if spec.fid_weights is None else inception_feature_fn(str(data_dir / spec.fid_weights), device)
    clip = None if spec.clip_dir is None else load_clip(str(data_dir / spec.clip_dir), device)
    return score_images(real, images, captions, feature_fn=features, clip=clip, kid_subsets=spec.kid_subsets,
                        kid_subset_size=spec.kid_subset_size, batch_size=spec.micro_batch_size)


__all__ = ["GenerationEvalSpec", "evaluate_generation", "first_caption_per_image", "score_images"]
