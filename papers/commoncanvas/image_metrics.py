"""Quality of generated images: FID against real images, and caption consistency.

FID (Heusel et al. 2017): fit a Gaussian to the features of real and of generated images and take
the Frechet distance ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2)). The features come from
a feature network: at smoke scale a `SceneRecognizer` trained here (`recognizer_feature_fn`); at
full scale the standard Inception-v3 pool features where the `pytorch_fid` package and its weights
file are available (`inception_feature_fn`). FID from a few hundred samples is biased upwards; only
compare numbers computed with the same feature network and the same sample sizes.

Caption consistency: a separately trained recognizer reads each generated image's attributes and
we count how often they match what the caption asked for (per attribute, and all at once).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy import linalg

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
    """Inception-v3 2048-d pool features (the standard FID network) from a local weights file.

    Needs the `pytorch_fid` package (which needs torchvision) and its pt_inception weights saved at
    ``weights_path``; nothing is downloaded. Images in [-1, 1] are resized to 299 inside.
    """
    try:
        from pytorch_fid.inception import FIDInceptionA, InceptionV3  # noqa: F401
    except Exception as e:  # noqa: BLE001 - ImportError, or torchvision failing to import
        raise RuntimeError("Inception FID needs the pytorch_fid package (and torchvision); "
                           "use recognizer_feature_fn at smoke scale") from e
    net = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]], resize_input=True, normalize_input=False,
                      use_fid_inception=False)
    state = torch.load(weights_path, map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=False)
    net.eval().to(device)
    return lambda x: net(x.to(device))[0].flatten(1)


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
