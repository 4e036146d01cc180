"""Compute-optimal (Chinchilla) and lifetime-optimal (Sardana et al. 2024) model sizes.

Chinchilla-optimal: the (N, D_tr) of least training compute 6·N·D_tr for a loss, or of least loss for a
training budget. Lifetime-optimal: the (N, D_tr) minimising 6·N·D_tr + 2·N·D_inf subject to
L(N, D_tr) = loss (arXiv 2401.00448, Eq. 2); the dollar version lives in costs.py and uses the same solver.

The solver. Write the excess loss L - E = A/N^alpha + B/D^beta and let u = (B/D^beta) / (L - E) be the
share carried by the data term; both N and D are closed-form in u. Minimising N·(D + w) for an
inference weight w >= 0 (w = D_inf / 3 for FLOPs) on the iso-loss curve gives the stationarity condition

    (alpha/beta) / u - (1 + alpha/beta) = w / D(u),

whose left side falls and right side rises in u on (0, alpha/(alpha+beta)], so it has exactly one root
(u = alpha/(alpha+beta), Chinchilla's split, when w = 0). We bisect on log u in log space, vectorised
over any broadcast shape: exact to double precision for hundreds of points in about a millisecond. The
paper's own code reaches the same root by Newton's method on D_tr.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .laws import ChinchillaCoefficients, _scalar, get_coefficients

TRAIN_FLOPS_PER_PARAM_TOKEN = 6.0       # forward + backward (Kaplan et al. 2020; Hoffmann et al. 2022)
INFERENCE_FLOPS_PER_PARAM_TOKEN = 2.0   # forward only
_BISECTION_STEPS = 80                   # bracket of width 100 in log u -> below double precision


@dataclass(frozen=True)
class Allocation:
    """A model size and training length (floats, or arrays of one broadcast shape) and its loss."""
    params: np.ndarray | float
    train_tokens: np.ndarray | float
    loss: np.ndarray | float

    @property
    def train_flops(self):
        return _scalar(TRAIN_FLOPS_PER_PARAM_TOKEN * np.asarray(self.params) * np.asarray(self.train_tokens))

    @property
    def tokens_per_param(self):
        return _scalar(np.asarray(self.train_tokens) / np.asarray(self.params))


def total_flops(params, train_tokens, inference_tokens):
    """Lifetime FLOPs: 6·N·D_tr for training plus 2·N·D_inf for inference."""
    params = np.asarray(params, dtype=float)
    return _scalar(TRAIN_FLOPS_PER_PARAM_TOKEN * params * np.asarray(train_tokens, dtype=float)
                   + INFERENCE_FLOPS_PER_PARAM_TOKEN * params * np.asarray(inference_tokens, dtype=float))


# --- Chinchilla: least training compute --------------------------------------------------------------
def chinchilla_for_loss(loss, coefficients: str | ChinchillaCoefficients = "hoffmann") -> Allocation:
    """The (N, D_tr) of least 6·N·D_tr reaching ``loss``: the terms split as A/N^a : B/D^b = b : a."""
    c = get_coefficients(coefficients)
    loss = c.check_loss(loss)
    excess = loss - c.E
    params = (c.A * (c.alpha + c.beta) / (c.beta * excess)) ** (1.0 / c.alpha)
    tokens = (c.B * (c.alpha + c.beta) / (c.alpha * excess)) ** (1.0 / c.beta)
    return Allocation(_scalar(params), _scalar(tokens), _scalar(loss))


def chinchilla_for_params(params, coefficients: str | ChinchillaCoefficients = "hoffmann") -> Allocation:
    """The training length at which an N-parameter model is compute-optimal, and the loss it reaches."""
    c = get_coefficients(coefficients)
    params = _positive(params, "params")
    param_term = c.A / params ** c.alpha
    data_term = param_term * c.alpha / c.beta
    tokens = (c.B / data_term) ** (1.0 / c.beta)
    return Allocation(_scalar(params), _scalar(tokens), _scalar(c.E + param_term + data_term))


def chinchilla_for_compute(train_flops, coefficients: str | ChinchillaCoefficients = "hoffmann") -> Allocation:
    """The (N, D_tr) of least loss for a training budget C = 6·N·D_tr (Hoffmann et al. 2022, Eq. 4)."""
    c = get_coefficients(coefficients)
    budget = _positive(train_flops, "train_flops") / TRAIN_FLOPS_PER_PARAM_TOKEN
    g = (c.alpha * c.A / (c.beta * c.B)) ** (1.0 / (c.alpha + c.beta))
    params = g * budget ** (c.beta / (c.alpha + c.beta))
    tokens = budget / params
    return Allocation(_scalar(params), _scalar(tokens), c.loss(params, tokens))


def quality_loss(params, coefficients: str | ChinchillaCoefficients = "hoffmann"):
    """The loss of an N-parameter model trained Chinchilla-optimally ("Chinchilla-<N> quality")."""
    return chinchilla_for_params(params, coefficients).loss


# --- lifetime optimum ---------------------------------------------------------------------------------
def lifetime_optimal(loss, inference_weight, coefficients: str | ChinchillaCoefficients = "hoffmann") -> Allocation:
    """The (N, D_tr) minimising N·(D_tr + w) subject to L(N, D_tr) = loss.

    ``inference_weight`` w (tokens, >= 0) is the inference cost per parameter divided by the training cost
    per parameter-token: D_inf / 3 for FLOPs (2·N·D_inf against 6·N·D_tr); costs.py builds it for dollars.
    ``loss`` and ``inference_weight`` broadcast together; w = 0 gives the Chinchilla allocation exactly.
    """
    c = get_coefficients(coefficients)
    loss = c.check_loss(loss)
    weight = np.asarray(inference_weight, dtype=float)
    if not np.all(np.isfinite(weight)) or np.any(weight < 0):
        raise ValueError(f"inference demand must be finite and >= 0; got {weight.tolist()}")
    loss, weight = np.broadcast_arrays(loss, weight)
    s = c.alpha / c.beta
    log_excess = np.log(loss - c.E)
    t_hi = np.log(s / (1.0 + s)) + np.zeros_like(loss)          # log u at Chinchilla's split
    log_weight = np.log(np.where(weight > 0, weight, 1.0))

    def log_tokens(t):
        return (np.log(c.B) - t - log_excess) / c.beta

    def stationarity(t):   # decreasing in t; its root is the optimum
        return np.log1p(s) + np.log(np.expm1(t_hi - t)) + log_tokens(t) - log_weight

    lo, hi = t_hi - 100.0, t_hi.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        if np.any(stationarity(lo)[weight > 0] <= 0):
            raise ValueError("inference demand too large to solve for")
        for _ in range(_BISECTION_STEPS):
            mid = 0.5 * (lo + hi)
            above = stationarity(mid) > 0
            lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    t = np.where(weight > 0, 0.5 * (lo + hi), t_hi)
    u = np.exp(t)
    tokens = np.exp(log_tokens(t))
    params = np.exp((np.log(c.A) - log_excess - np.log1p(-u)) / c.alpha)
    return Allocation(_scalar(params), _scalar(tokens), _scalar(loss))


def inference_optimal(loss, inference_tokens, coefficients: str | ChinchillaCoefficients = "hoffmann") -> Allocation:
    """The (N, D_tr) minimising 6·N·D_tr + 2·N·D_inf at a given loss (Sardana et al. 2024, Eq. 2)."""
    weight = (INFERENCE_FLOPS_PER_PARAM_TOKEN / TRAIN_FLOPS_PER_PARAM_TOKEN) * np.asarray(inference_tokens, dtype=float)
    return lifetime_optimal(loss, weight, coefficients)


@dataclass(frozen=True)
class FlopsComparison:
    """The FLOP-optimal model against the Chinchilla-optimal one of the same loss, serving the same demand."""
    optimal: Allocation
    chinchilla: Allocation
    inference_tokens: np.ndarray | float

    @property
    def total_flops(self):
        return total_flops(self.optimal.params, self.optimal.train_tokens, self.inference_tokens)

    @property
    def chinchilla_total_flops(self):
        return total_flops(self.chinchilla.params, self.chinchilla.train_tokens, self.inference_tokens)

    @property
    def saved_flops(self):
        return _scalar(np.asarray(self.chinchilla_total_flops) - np.asarray(self.total_flops))

    @property
    def saving(self):
        """Fraction of the Chinchilla model's lifetime FLOPs saved (0 at no inference)."""
        return _scalar(np.asarray(self.saved_flops) / np.asarray(self.chinchilla_total_flops))


def compare_flops(loss, inference_tokens, coefficients: str | ChinchillaCoefficients = "hoffmann") -> FlopsComparison:
    """Lifetime-FLOP-optimal vs Chinchilla-optimal at ``loss`` for ``inference_tokens`` (broadcast)."""
    c = get_coefficients(coefficients)
    optimal = inference_optimal(loss, inference_tokens, c)
    loss_b = np.broadcast_to(np.asarray(loss, dtype=float), np.shape(optimal.params))
    return FlopsComparison(optimal=optimal, chinchilla=chinchilla_for_loss(_scalar(loss_b), c),
                           inference_tokens=_scalar(np.asarray(inference_tokens, dtype=float)))


def _positive(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if not np.all(np.isfinite(x)) or np.any(x <= 0):
        raise ValueError(f"{name} must be finite and > 0; got {x.tolist()}")
    return x


__all__ = ["Allocation", "FlopsComparison", "TRAIN_FLOPS_PER_PARAM_TOKEN", "INFERENCE_FLOPS_PER_PARAM_TOKEN",
           "total_flops", "chinchilla_for_loss", "chinchilla_for_params", "chinchilla_for_compute", "quality_loss",
           "lifetime_optimal", "inference_optimal", "compare_flops"]
