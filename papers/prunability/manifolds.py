"""Data with a controlled intrinsic dimension in a fixed ambient dimension, and estimators that check it.

- `manifold_classification`: latent z ~ N(0, I_k) pushed through a fixed random smooth map
  R^k -> R^D (a random two-layer tanh network, the same map for every sample of one `embed_seed`),
  so the data lie on a k-dimensional manifold in R^D. Labels are the argmax of a fixed random linear
  map of the first `label_dims` latent coordinates (None: all k). With a fixed `label_dims` the rule
  stays the same as k grows and the other k - label_dims coordinates are variation the classifier
  must ignore; with None the label function itself is k-dimensional.
- `pca_project`: real images with their dimension reduced: projected on the top-k principal
  components of the training set and mapped back, so the ambient dimension is unchanged and the
  data lie in a k-dimensional affine subspace.
- `twonn_dimension` (Facco et al. 2017) and `mle_dimension` (Levina & Bickel 2005) estimate the
  intrinsic dimension from nearest-neighbour distances.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from shared.data.images import ImageSet


@dataclass
class ManifoldConfig:
    """intrinsic_dim k, ambient_dim D (reshaped to 1 x side x side images when D is a square),
    num_classes, label_dims (<= k; None = all k), hidden width of the random embedding network
    (>= k: the map R^k -> R^hidden -> R^D has rank at most hidden, so a narrower net would cap
    the data's dimension at its width)."""

    intrinsic_dim: int = 4
    ambient_dim: int = 64
    num_classes: int = 4
    label_dims: int | None = 2
    hidden: int = 128
    embed_seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.intrinsic_dim <= self.ambient_dim:
            raise ValueError(f"intrinsic_dim must be in [1, ambient_dim={self.ambient_dim}], got {self.intrinsic_dim}")
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {self.num_classes}")
        if self.hidden < self.intrinsic_dim:
            raise ValueError(f"hidden={self.hidden} < intrinsic_dim={self.intrinsic_dim}: the data would have "
                             f"dimension at most {self.hidden}; widen the embedding network")
        if self.label_dims is not None and self.label_dims < 1:
            raise ValueError(f"label_dims must be >= 1 or None, got {self.label_dims}")
        if min(self.label_dims or self.intrinsic_dim, self.intrinsic_dim) < 2 and self.num_classes > 2:
            raise ValueError("more than 2 classes need at least 2 label dimensions (label_dims and intrinsic_dim >= 2)")


def _embedding(cfg: ManifoldConfig):
    """The fixed random map R^k -> R^D and the label rule; depend only on (k, D, C, label_dims, embed_seed)."""
    rng = np.random.default_rng([cfg.embed_seed, cfg.intrinsic_dim, cfg.ambient_dim])
    k, h, d = cfg.intrinsic_dim, cfg.hidden, cfg.ambient_dim
    w1 = rng.normal(0, 1.0 / np.sqrt(k), size=(k, h)) * 1.5
    b1 = rng.normal(0, 0.5, size=h)
    w2 = rng.normal(0, 1.0 / np.sqrt(h), size=(h, d))
    lab_dims = min(cfg.label_dims or k, k)
    # The label rule depends on the label coordinates only, not on k: the same for every k. Class
    # directions are unit vectors (every class gets a cone of latent space); in two label
    # dimensions they are evenly spaced, so the classes are balanced.
    label_rng = np.random.default_rng([cfg.embed_seed, 7919, lab_dims, cfg.num_classes])
    if lab_dims == 2:
        angles = label_rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.arange(cfg.num_classes) / cfg.num_classes
        a = np.stack([np.cos(angles), np.sin(angles)])
    else:
        a = label_rng.normal(size=(lab_dims, cfg.num_classes))
        a /= np.linalg.norm(a, axis=0, keepdims=True)
    return w1, b1, w2, a, lab_dims


def manifold_classification(n: int, cfg: ManifoldConfig, seed: int = 0) -> ImageSet:
    """`n` examples on a `cfg.intrinsic_dim`-dimensional manifold in R^D, as [n, 1, s, s] images
    when D = s * s (else [n, 1, 1, D]). Deterministic given (cfg, seed)."""
    w1, b1, w2, a, lab_dims = _embedding(cfg)
    rng = np.random.default_rng([seed, 104729])
    # drawn coordinate by coordinate: the first coordinates (the label ones) of sample i are the same
    # for every k, so only the nuisance coordinates change with the intrinsic dimension
    z = rng.normal(size=(cfg.intrinsic_dim, n)).T
    x = np.tanh(z @ w1 + b1) @ w2
    y = np.argmax(z[:, :lab_dims] @ a, axis=1)
    side = int(round(np.sqrt(cfg.ambient_dim)))
    shape = (n, 1, side, side) if side * side == cfg.ambient_dim else (n, 1, 1, cfg.ambient_dim)
    return ImageSet(torch.tensor(x, dtype=torch.float32).reshape(shape), torch.tensor(y, dtype=torch.long),
                    tuple(str(c) for c in range(cfg.num_classes)), name=f"manifold-k{cfg.intrinsic_dim}")


def pca_project(train: ImageSet, *others: ImageSet, k: int) -> list[ImageSet]:
    """Every set projected on the top-`k` principal components of `train` and mapped back to the
    original shape (x -> mean + U_k U_k^T (x - mean)): ambient dimension kept, linear dimension k."""
    flat = train.x.reshape(len(train), -1).double()
    if not 1 <= k <= flat.shape[1]:
        raise ValueError(f"k must be in [1, {flat.shape[1]}], got {k}")
    mean = flat.mean(0, keepdim=True)
    _, _, vt = torch.linalg.svd(flat - mean, full_matrices=False)
    basis = vt[:k].T                                       # [D, k]
    out = []
    for s in (train, *others):
        f = s.x.reshape(len(s), -1).double() - mean
        out.append(s.with_x(((f @ basis) @ basis.T + mean).float().reshape(s.x.shape)))
    return out


def explained_variance(train: ImageSet, k: int) -> float:
    """Fraction of the training set's variance in its top-k principal components."""
    flat = train.x.reshape(len(train), -1).double()
    s = torch.linalg.svdvals(flat - flat.mean(0, keepdim=True)) ** 2
    return float(s[:k].sum() / s.sum())


def _neighbour_distances(x: np.ndarray, k: int) -> np.ndarray:
    """Distances to the k nearest other points, sorted ascending: [N, k]. Duplicate points dropped."""
    from sklearn.neighbors import NearestNeighbors

    x = np.unique(np.asarray(x, dtype=np.float64).reshape(len(x), -1), axis=0)
    if len(x) <= k:
        raise ValueError(f"need more than k={k} distinct points, got {len(x)}")
    dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    return dist[:, 1:]


def twonn_dimension(x, discard_fraction: float = 0.1) -> float:
    """TwoNN estimate (Facco et al. 2017). With mu = r2 / r1 (second over first neighbour
    distance), P(mu <= m) = 1 - m^-d, so -log(1 - F(mu)) = d log(mu): d is the slope through the
    origin of that line over the empirical CDF, fit on all but the largest `discard_fraction` of mu
    (noise-dominated), as the paper recommends. discard_fraction=0 gives the MLE N / sum(log mu)."""
    if not 0.0 <= discard_fraction < 1.0:
        raise ValueError(f"discard_fraction must be in [0, 1), got {discard_fraction}")
    d = _neighbour_distances(x, 2)
    mu = np.sort(d[:, 1] / np.maximum(d[:, 0], 1e-12))
    mu = np.maximum(mu, 1.0 + 1e-12)
    if discard_fraction == 0.0:
        return float(len(mu) / np.sum(np.log(mu)))
    n = len(mu)
    keep = max(2, int(n * (1.0 - discard_fraction)))
    xs = np.log(mu[:keep])
    ys = -np.log(1.0 - np.arange(keep) / n)
    return float(np.dot(xs, ys) / np.dot(xs, xs))


def mle_dimension(x, k: int = 20) -> float:
    """Levina-Bickel MLE with k neighbours, averaged over points (MacKay & Ghahramani's correction:
    average the inverse estimates): 1 / mean_i [ (1/(k-1)) sum_j log(T_k(x_i) / T_j(x_i)) ]."""
    if k < 3:
        raise ValueError(f"k must be >= 3, got {k}")
    d = _neighbour_distances(x, k)
    logs = np.log(d[:, -1:] / np.maximum(d[:, :-1], 1e-12))
    return float(1.0 / np.mean(logs.sum(axis=1) / (k - 1)))
