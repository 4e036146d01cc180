"""The Chinchilla parametric loss L(N, D) = E + A / N**alpha + B / D**beta and its coefficient sets.

N is the parameter count, D the number of pre-training tokens. Every function broadcasts over numpy
arrays (any shapes numpy can broadcast together) and returns floats or arrays of the broadcast shape.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ChinchillaCoefficients:
    """Coefficients of L(N, D) = E + A / N**alpha + B / D**beta (Hoffmann et al. 2022, Approach 3)."""
    name: str
    A: float
    B: float
    E: float
    alpha: float
    beta: float
    source: str = ""

    def __post_init__(self):
        for field in ("A", "B", "E", "alpha", "beta"):
            value = getattr(self, field)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"coefficient {field}={value!r} of set {self.name!r} must be a finite number > 0")

    def loss(self, params, tokens):
        """Predicted pre-training loss of an N-parameter model trained on D tokens."""
        params, tokens = np.asarray(params, dtype=float), np.asarray(tokens, dtype=float)
        return _scalar(self.E + self.A / params ** self.alpha + self.B / tokens ** self.beta)

    def tokens_for_loss(self, params, loss):
        """Training tokens an N-parameter model needs to reach ``loss`` (inf where it never can)."""
        params, loss = np.asarray(params, dtype=float), np.asarray(loss, dtype=float)
        headroom = loss - self.E - self.A / params ** self.alpha
        with np.errstate(divide="ignore", invalid="ignore"):
            tokens = np.where(headroom > 0, (self.B / headroom) ** (1.0 / self.beta), np.inf)
        return _scalar(tokens)

    def params_for_loss(self, tokens, loss):
        """Parameters a model trained on D tokens needs to reach ``loss`` (inf where it never can)."""
        tokens, loss = np.asarray(tokens, dtype=float), np.asarray(loss, dtype=float)
        headroom = loss - self.E - self.B / tokens ** self.beta
        with np.errstate(divide="ignore", invalid="ignore"):
            params = np.where(headroom > 0, (self.A / headroom) ** (1.0 / self.alpha), np.inf)
        return _scalar(params)

    def check_loss(self, loss) -> np.ndarray:
        """``loss`` as an array; ValueError unless every value is finite and above the irreducible E."""
        loss = np.asarray(loss, dtype=float)
        if not np.all(np.isfinite(loss)) or np.any(loss <= self.E):
            raise ValueError(f"loss must be a finite number above the irreducible loss E={self.E} of coefficient "
                             f"set {self.name!r}; got {loss.tolist()}")
        return loss

    def as_dict(self) -> dict:
        return {"name": self.name, "A": self.A, "B": self.B, "E": self.E, "alpha": self.alpha, "beta": self.beta,
                "source": self.source}


def _scalar(x):
    """0-d arrays become Python floats so scalar calls give scalars."""
    x = np.asarray(x)
    return float(x) if x.ndim == 0 else x


# The sets. `hoffmann` is what Sardana et al. (2024) computed with: the defaults of the authors' code
# (github.com/nikhilsardana/beyond-chinchilla, utils.py: ChinchillaConstants). With them the paper's worked
# examples reproduce to the printed digit (Fig. 1: 1.7e22 FLOPs, 17%); with the TeX-source values below
# they do not (1.6e22, 16%).
COEFFICIENTS: dict[str, ChinchillaCoefficients] = {c.name: c for c in (
    ChinchillaCoefficients(
        "hoffmann", A=406.4, B=410.7, E=1.69, alpha=0.336, beta=0.283,
        source="Hoffmann et al. 2022 (arXiv 2203.15556) Approach 3, as used by Sardana et al. 2024: "
               "nikhilsardana/beyond-chinchilla utils.py defaults (alpha=0.336, beta=0.283)"),
    ChinchillaCoefficients(
        "hoffmann_tex", A=math.exp(6.0073404), B=math.exp(6.0179186), E=math.exp(0.5267228),
        alpha=0.33917084, beta=0.2849083,
        source="Hoffmann et al. 2022 unrounded TeX-source estimates (log A, log B, log E, alpha, beta) as "
               "recovered by Besiroglu et al. 2024 (epoch-research/analyzing-chinchilla, data_analysis.ipynb)"),
    ChinchillaCoefficients(
        "hoffmann_rounded", A=406.4, B=410.7, E=1.69, alpha=0.34, beta=0.28,
        source="Hoffmann et al. 2022 Eq. 10 as printed in the paper body (alpha=0.34, beta=0.28)"),
    ChinchillaCoefficients(
        "besiroglu", A=482.01, B=2085.43, E=1.82, alpha=0.3478, beta=0.3658,
        source="Besiroglu, Erdil, Barnett, You 2024, 'Chinchilla Scaling: A replication attempt' "
               "(arXiv 2404.10102), Approach 3 refit as printed (unrounded: E=1.8172, alpha=0.34781, "
               "beta=0.36585; epoch-research/analyzing-chinchilla)"),
)}


def get_coefficients(coefficients: str | ChinchillaCoefficients = "hoffmann") -> ChinchillaCoefficients:
    """A coefficient set by name (or pass one through); ValueError naming the valid names."""
    if isinstance(coefficients, ChinchillaCoefficients):
        return coefficients
    try:
        return COEFFICIENTS[coefficients]
    except (KeyError, TypeError):
        raise ValueError(f"unknown coefficient set {coefficients!r}; valid: {', '.join(COEFFICIENTS)}") from None


__all__ = ["ChinchillaCoefficients", "COEFFICIENTS", "get_coefficients"]
