"""Quality of generated images: FID and KID against real images, CLIP score, and caption consistency.

FID (Heusel et al. 2017): fit a Gaussian to the features of real and of generated images and take
the Frechet distance ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2)). The features come from
a feature network: at smoke scale a `SceneRecognizer` trained here (`recognizer_feature_fn`); at
full scale the standard FID Inception-v3 pool features from the local weights file
(`inception_feature_fn`, `fid_inception`; `frechet_distance_of_features` computes FID from the two
feature sets, exactly also when there are fewer samples than dimensions). FID from a few hundred samples is
biased upwards; only compare numbers computed with the same feature network and the same sample sizes.

Caption consistency: a separately trained recognizer reads each generated image's attributes and
we count how often they match what the caption asked for (per attribute, and all at once).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy import linalg

from .fid_inception import load_fid_inception

FeatureFn = Callable[[torch.Tensor], torch.Tensor]


def feature_statistics(features: torch.Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) of features (N, D), in float64."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"features must be (N >= 2, D), got {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():   # near-singular product: regularise the diagonal
        offset = np.eye(len(sigma1)) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    covmean = covmean.real
    return float(max(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean), 0.0))


def frechet_distance_of_features(real: torch.Tensor | np.ndarray, generated: torch.Tensor | np.ndarray) -> float:
    """FID of features (N_r, D) and (N_g, D). With at least as many samples as dimensions in both sets the
    covariances are fitted and ``frechet_distance`` takes the matrix square root (pytorch-fid's way). With
    fewer (the covariances are singular, where sqrtm is slow and inexact) the trace term is exact from the
    centred features X_r, X_g: the nonzero eigenvalues of S_r S_g are the squared singular values of
    X_r X_g^T / sqrt((N_r - 1)(N_g - 1)), so Tr((S_r S_g)^(1/2)) is that (N_r, N_g) matrix's nuclear norm."""
    x, y = np.asarray(real, dtype=np.float64), np.asarray(generated, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or min(len(x), len(y)) < 2:
        raise ValueError(f"features must be (N >= 2, D) with the same D, got {x.shape} and {y.shape}")
    if min(len(x), len(y)) > x.shape[1]:
        return frechet_distance(*feature_statistics(x), *feature_statistics(y))
    return max(_frechet_low_rank(x, y), 0.0)


def _frechet_low_rank(x: np.ndarray, y: np.ndarray) -> float:
    """||mu_x - mu_y||^2 + Tr(S_x) + Tr(S_y) - 2 Tr((S_x S_y)^(1/2)) of features (N_x, D), (N_y, D), from
    (N_x, N_y)-sized products only."""
    cx, cy = x - x.mean(0), y - y.mean(0)
    nx, ny = len(x) - 1, len(y) - 1
    diff = x.mean(0) - y.mean(0)
    trace_sqrt = np.linalg.svd(cx @ cy.T, compute_uv=False).sum() / np.sqrt(nx * ny)
    return float(diff @ diff + (cx * cx).sum() / nx + (cy * cy).sum() / ny - 2 * trace_sqrt)


@torch.no_grad()
def extract_features(feature_fn: FeatureFn, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """feature_fn over images (N, C, S, S) in batches -> (N, D) float32 on CPU."""
    return torch.cat([feature_fn(images[s:s + batch_size]).float().cpu() for s in range(0, len(images), batch_size)])


def fid(feature_fn: FeatureFn, real: torch.Tensor, generated: torch.Tensor, batch_size: int = 512) -> float:
    """FID between two image sets (N, C, S, S) in [-1, 1] under ``feature_fn``."""
    mu_r, s_r = feature_statistics(extract_features(feature_fn, real, batch_size).numpy())
    mu_g, s_g = feature_statistics(extract_features(feature_fn, generated, batch_size).numpy())
    return frechet_distance(mu_r, s_r, mu_g, s_g)


def recognizer_feature_fn(net: torch.nn.Module) -> FeatureFn:
    """The penultimate features of a trained `SceneRecognizer` (eval mode, its device)."""
    net.eval()
    device = next(net.parameters()).device
    return lambda x: net.features(x.to(device))


def inception_feature_fn(weights_path: str, device: str = "cpu") -> FeatureFn:
    """The standard FID features: Inception-v3 2048-d pool features (``fid_inception``) from the local
    pt_inception weights file at ``weights_path`` (nothing is downloaded). Images (N, 3, S, S) in [-1, 1]."""
    net = load_fid_inception(weights_path, device)
    return lambda x: net(x.to(device))


def kid(feature_fn: FeatureFn, real: torch.Tensor, generated: torch.Tensor, subsets: int = 100,
        subset_size: int = 1000, batch_size: int = 512, seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (Binkowski et al. 2018): the unbiased MMD^2 between features of ``real``
    and ``generated`` (N, C, S, S) under the cubic polynomial kernel k(x, y) = (x.y / D + 1)^3, averaged over
    ``subsets`` random subsets of ``subset_size`` of each (capped at the smaller set). Returns (mean, std);
    unlike FID it is unbiased, so small sample sizes can be compared."""
    return kid_from_features(extract_features(feature_fn, real, batch_size).double(),
                             extract_features(feature_fn, generated, batch_size).double(), subsets, subset_size, seed)


def kid_from_features(real: torch.Tensor, generated: torch.Tensor, subsets: int = 100, subset_size: int = 1000,
                      seed: int = 0) -> tuple[float, float]:
    """KID of features (N_r, D) and (N_g, D) (see ``kid``)."""
    m = min(subset_size, len(real), len(generated))
    if m < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {len(real)} and {len(generated)}")
    d = real.shape[1]
    gen = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        x = real[torch.randperm(len(real), generator=gen)[:m]]
        y = generated[torch.randperm(len(generated), generator=gen)[:m]]
        kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
        off = m * (m - 1)
        values.append(float((kxx.sum() - kxx.diagonal().sum()) / off + (kyy.sum() - kyy.diagonal().sum()) / off
                            - 2 * kxy.mean()))
    return float(np.mean(values)), float(np.std(values))


@torch.no_grad()
def clip_score(model, tokenizer, images: torch.Tensor, captions: list[str], batch_size: int = 64) -> float:
    """CLIP score (Hessel et al. 2021, as torchmetrics computes it): the mean over pairs of
    100 * max(cos(image embedding, caption embedding), 0).

    model: a transformers ``CLIPModel`` (e.g. ``load_clip(dir)``); images (N, 3, S, S) in [-1, 1], resized
    to the model's image size and normalised with CLIP's mean / std here; captions: N strings, cut to the
    text model's context length."""
    if len(images) != len(captions):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    device = next(model.parameters()).device
    size = model.config.vision_config.image_size
    mean = torch.tensor(CLIP_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=device).view(1, 3, 1, 1)
    scores = []
    for s in range(0, len(images), batch_size):
        pixels = torch.nn.functional.interpolate((images[s:s + batch_size].to(device).float() + 1) / 2, size=(size, size),
                                                 mode="bicubic", align_corners=False).clamp(0, 1)
        text = tokenizer(captions[s:s + batch_size], padding=True, truncation=True,
                         max_length=model.config.text_config.max_position_embeddings, return_tensors="pt").to(device)
        img = _embedding(model.get_image_features(pixel_values=(pixels - mean) / std))          # (B, E)
        txt = _embedding(model.get_text_features(input_ids=text["input_ids"],
                                                 attention_mask=text["attention_mask"]))       # (B, E)
        scores.append((100 * torch.nn.functional.cosine_similarity(img, txt, dim=-1)).clamp(min=0))
    return float(torch.cat(scores).mean())


CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)     # OpenAI CLIP's preprocessing
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _embedding(out) -> torch.Tensor:
    """transformers returns a tensor, or (newer versions) an output object holding the pooled embedding."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def load_clip(folder: str, device: str = "cpu"):
    """(CLIPModel, tokenizer) from a local transformers folder (e.g. openai/clip-vit-large-patch14 saved in
    data_dir); nothing is downloaded."""
    from transformers import AutoTokenizer, CLIPModel
    model = CLIPModel.from_pretrained(folder, local_files_only=True).eval().to(device)
    return model, AutoTokenizer.from_pretrained(folder, local_files_only=True)


@torch.no_grad()
def caption_consistency(recognizer: torch.nn.Module, images: torch.Tensor, labels: dict[str, torch.Tensor],
                        batch_size: int = 512) -> dict[str, float]:
    """How often the recognizer sees in ``images`` what ``labels`` (the captions' attributes) ask for.

    Returns {attribute: accuracy, "mean": mean over attributes, "all": fraction of images with every
    attribute right}.
    """
    predicted = recognizer.predict(images, batch_size=batch_size)
    hits = {a: (predicted[a] == labels[a].cpu()) for a in predicted}
    out = {a: float(h.float().mean()) for a, h in hits.items()}
    out["mean"] = float(np.mean([out[a] for a in hits]))
    out["all"] = float(torch.stack(list(hits.values())).all(0).float().mean())
    return out
