"""Fit the Chinchilla loss L(N, D) = E + A/N**alpha + B/D**beta to measured (N, D, loss) points.

Hoffmann et al. (2022, Approach 3) fit the log of the law to the log of the losses with a Huber loss
(delta = 1e-3) and L-BFGS, started from a grid of initialisations, keeping the best optimum:

    min over (a, b, e, alpha, beta) of  sum_i Huber_delta( LSE(a - alpha log N_i, b - beta log D_i, e) - log L_i )

with A = exp(a), B = exp(b), E = exp(e) and LSE the log-sum-exp. The same procedure is in the
authors' code of Sardana et al. 2024 (github.com/nikhilsardana/beyond-chinchilla, huber_optimize.py;
read, not copied). Ours evaluates the objective on the whole initialisation grid at once (numpy) and
runs L-BFGS-B, with the analytic gradient, from the `refine` best grid points only, instead of one L-BFGS
run per grid point (on the authors' 47 runs, 8 to 64 refined starts reach the same optimum). Unlike
Hoffmann et al. it bounds the search (DEFAULT_BOUNDS) so that A, B, E stay positive finite floats.

    fit = fit_chinchilla(params, tokens, losses)           # arrays of the same length
    fit.coefficients.loss(N, D)                              # a shared.scaling.laws.ChinchillaCoefficients
    typical = fit_chinchilla(params[r <= 100], tokens[r <= 100], losses[r <= 100])
    residuals = losses - typical.coefficients.loss(params, tokens)   # > 0: the fit predicted too low a loss
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize

from .laws import ChinchillaCoefficients

# The initialisation grid of the authors' huber_optimize.py (after Hoffmann et al.): alpha, beta in {0, 0.5, ..., 2},
# e in {-1, -0.5, ..., 1}, a, b in {0, 5, ..., 25}.
HOFFMANN_GRID = {"alpha": (0.0, 0.5, 1.0, 1.5, 2.0), "beta": (0.0, 0.5, 1.0, 1.5, 2.0),
                 "e": (-1.0, -0.5, 0.0, 0.5, 1.0), "a": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
                 "b": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0)}
_ORDER = ("a", "b", "e", "alpha", "beta")     # the layout of the parameter vector
DEFAULT_BOUNDS = {"a": (-20.0, 100.0), "b": (-20.0, 100.0), "e": (-20.0, 100.0), "alpha": (0.0, None),
                  "beta": (0.0, None)}


@dataclass(frozen=True)
class ChinchillaFit:
    """A fitted law and how well it fits. `objective` is the summed Huber loss at the optimum."""
    coefficients: ChinchillaCoefficients
    objective: float
    n_points: int
    converged: bool
    rms_log_residual: float          # sqrt(mean((log L_pred - log L)^2)) over the fitted points
    starts: int                      # L-BFGS runs made
    message: str = ""
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        c = self.coefficients
        return {"E": c.E, "A": c.A, "B": c.B, "alpha": c.alpha, "beta": c.beta, "objective": self.objective,
                "n_points": self.n_points, "converged": self.converged,
                "rms_log_residual": self.rms_log_residual, **self.extra}


def _check_points(params, tokens, losses) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arrays = [np.asarray(x, dtype=float).reshape(-1) for x in (params, tokens, losses)]
    if len({a.size for a in arrays}) != 1:
        raise ValueError(f"params, tokens and losses need the same length, got {[a.size for a in arrays]}")
    for name, a in zip(("params", "tokens", "losses"), arrays):
        if not np.all(np.isfinite(a)) or np.any(a <= 0):
            raise ValueError(f"{name} must be finite and > 0; got {a.tolist()}")
    if arrays[0].size < 5:
        raise ValueError(f"need at least 5 points to fit 5 coefficients, got {arrays[0].size}")
    return arrays[0], arrays[1], arrays[2]


def huber_objective(theta: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_l: np.ndarray,
                    delta: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Summed Huber loss of the log-law residuals and its gradient.

    theta: (..., 5) parameter vectors (a, b, e, alpha, beta), any leading shape; log_n, log_d, log_l: (P,).
    Returns (objective (...,), gradient (..., 5)).
    """
    theta = np.asarray(theta, dtype=float)
    a, b, e, alpha, beta = (theta[..., i, None] for i in range(5))
    t_n, t_d = a - alpha * log_n, b - beta * log_d                            # (..., P)
    t_e = np.broadcast_to(e, t_n.shape)
    top = np.maximum(np.maximum(t_n, t_d), t_e)                               # log-sum-exp, stably
    w_n, w_d, w_e = np.exp(t_n - top), np.exp(t_d - top), np.exp(t_e - top)
    total = w_n + w_d + w_e
    r = top + np.log(total) - log_l                                           # log-law residuals (..., P)
    w_n, w_d, w_e = w_n / total, w_d / total, w_e / total                     # d LSE / d (t_n, t_d, t_e)
    small = np.abs(r) <= delta
    value = np.where(small, 0.5 * r * r, delta * (np.abs(r) - 0.5 * delta)).sum(-1)   # scipy.special.huber
    dr = np.clip(r, -delta, delta)                                            # Huber'(r)
    grad = np.stack([(dr * w_n).sum(-1), (dr * w_d).sum(-1), (dr * w_e).sum(-1),
                     -(dr * w_n * log_n).sum(-1), -(dr * w_d * log_d).sum(-1)], axis=-1)
    return value, grad


def fit_chinchilla(params, tokens, losses, *, delta: float = 1e-3, grid: dict | None = None, refine: int = 16,
                   bounds: dict | None = None, name: str = "fit", source: str = "") -> ChinchillaFit:
    """Fit E + A/N^alpha + B/D^beta to points (params N, tokens D, losses L), Hoffmann et al.'s way.

    params, tokens, losses: 1-D arrays (or sequences) of the same length P >= 5, all > 0.
    delta: the Huber threshold on log-loss residuals (Hoffmann et al.: 1e-3).
    grid: initialisations {"a", "b", "e", "alpha", "beta": values} (default HOFFMANN_GRID, 4,500 starts);
    refine: L-BFGS-B runs, from the grid points of lowest objective.
    bounds: {"alpha": (lo, hi), ...} for L-BFGS-B, merged into DEFAULT_BOUNDS (alpha, beta >= 0; log-coefficients
        a, b, e in [-20, 100], which keeps A, B, E positive finite floats; E may still end near 0 when the
        points show no floor).
    """
    n, d, l = _check_points(params, tokens, losses)
    log_n, log_d, log_l = np.log(n), np.log(d), np.log(l)
    grid = dict(HOFFMANN_GRID if grid is None else grid)
    missing = set(_ORDER) - set(grid)
    if missing:
        raise ValueError(f"grid needs values for {sorted(missing)}; it has {sorted(grid)}")
    starts = np.array(list(itertools.product(*(grid[k] for k in _ORDER))), dtype=float)   # (S, 5)
    values = np.concatenate([huber_objective(chunk, log_n, log_d, log_l, delta)[0]
                             for chunk in np.array_split(starts, max(1, len(starts) // 512))])
    chosen = starts[np.argsort(values, kind="stable")[:max(1, refine)]]
    box = DEFAULT_BOUNDS | dict(bounds or {})
    unknown = set(box) - set(_ORDER)
    if unknown:
        raise ValueError(f"bounds for unknown coefficients {sorted(unknown)}; valid: {', '.join(_ORDER)}")
    box_list = [box.get(k, (None, None)) for k in _ORDER]

    def fun(theta):
        value, grad = huber_objective(theta, log_n, log_d, log_l, delta)
        return float(value), grad

    best = None
    for x0 in chosen:
        x0 = np.array([np.clip(v, lo if lo is not None else -np.inf, hi if hi is not None else np.inf)
                       for v, (lo, hi) in zip(x0, box_list)])
        res = minimize(fun, x0, jac=True, method="L-BFGS-B", bounds=box_list,
                       options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-12})
        if best is None or res.fun < best.fun:
            best = res
    a, b, e, alpha, beta = best.x
    coefficients = ChinchillaCoefficients(name, A=math.exp(a), B=math.exp(b), E=math.exp(e),
                                          alpha=max(float(alpha), 1e-12), beta=max(float(beta), 1e-12),
                                          source=source or f"Huber fit (delta={delta:g}) to {n.size} points")
    pred = np.log(coefficients.loss(n, d))
    return ChinchillaFit(coefficients, float(best.fun), int(n.size), bool(best.success),
                         float(np.sqrt(np.mean((pred - log_l) ** 2))), len(chosen), str(best.message))


def extrapolation_residuals(coefficients: ChinchillaCoefficients, params, tokens, losses) -> np.ndarray:
    """measured - predicted loss at each point (nats): > 0 where the law predicts a lower loss than measured,
    i.e. where it overestimates what the model reached."""
    n, d, l = (np.asarray(x, dtype=float).reshape(-1) for x in (params, tokens, losses))
    return l - np.asarray(coefficients.loss(n, d), dtype=float).reshape(-1)


__all__ = ["HOFFMANN_GRID", "DEFAULT_BOUNDS", "ChinchillaFit", "huber_objective", "fit_chinchilla",
           "extrapolation_residuals"]
