"""Diversity of sampled generations: how many different things a model says for one prompt.

For each prompt, n completions are sampled (temperature > 0). Per prompt we measure
- unique_fraction: distinct completion strings / n (1.0: all different; 1/n: one string repeated);
- distinct_n: distinct word n-grams / total word n-grams over the n completions (Li et al. 2016);
and average over prompts. Completions are compared after stripping surrounding whitespace.

    report = generation_diversity({"prompt a": ["x", "x", "y"], "prompt b": [...]}, ns=(1, 2))
    report.unique_fraction, report.distinct["distinct_2"]
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np


def unique_fraction(texts: Sequence[str]) -> float:
    """Distinct strings (whitespace-stripped) / number of strings."""
    if not texts:
        raise ValueError("no texts given")
    return len({t.strip() for t in texts}) / len(texts)


def ngrams(words: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct word n-grams / total word n-grams pooled over `texts`; 0.0 when there are none."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    grams = [g for t in texts for g in ngrams(t.split(), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


@dataclass
class DiversityReport:
    unique_fraction: float                       # mean over prompts
    distinct: dict[str, float]                   # {"distinct_1": mean over prompts, ...}
    per_prompt: list[dict] = field(default_factory=list)
    samples_per_prompt: int = 0


def generation_diversity(samples: Mapping[str, Sequence[str]], ns: Sequence[int] = (1, 2, 3)) -> DiversityReport:
    """Diversity of {prompt: [completion, ...]} (every prompt needs the same number >= 2 of samples)."""
    if not samples:
        raise ValueError("no prompts given")
    counts = {len(v) for v in samples.values()}
    if len(counts) != 1 or min(counts) < 2:
        raise ValueError(f"every prompt needs the same number (>= 2) of samples, got counts {sorted(counts)}")
    rows = []
    for prompt, texts in samples.items():
        row = {"prompt": prompt, "unique_fraction": unique_fraction(texts)}
        row.update({f"distinct_{n}": distinct_n(texts, n) for n in ns})
        rows.append(row)
    return DiversityReport(unique_fraction=float(np.mean([r["unique_fraction"] for r in rows])),
                           distinct={f"distinct_{n}": float(np.mean([r[f"distinct_{n}"] for r in rows])) for n in ns},
                           per_prompt=rows, samples_per_prompt=counts.pop())
