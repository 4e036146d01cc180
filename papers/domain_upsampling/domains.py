"""The smoke-scale domain data of the upsampling runs: limited training sets, held-out evaluation forms.

The paper upsamples small domain sets late in a 1T-token run, so they are repeated; its benchmarks
(GSM8K, HumanEval, MMLU) are not the domain training text. At smoke scale this module gives:

- math (GSM8K): `math_splits` splits shared.data.generated.arithmetic's ten problem templates into
  training templates and held-out templates (HELD_OUT_TEMPLATES). Training documents come only from
  the training templates; the benchmark's problems only from the held-out ones (out-of-template).
  Registered as the stream source "upsampling_math" (see shared.data.lm_streams.register_source).
- code (HumanEval): trained on generated HumanEval-shaped functions only; evaluated on held-out real
  code, CPython standard-library modules of the `code_stdlib` test split (`code_heldout_windows`).
- knowledge (MMLU): the fact base's documents state the facts; the benchmark asks the held-out
  questions in a question-then-answer form that no training document uses (evals.fact_recall_items).

The sizes in scales.py keep each domain set at about 12-15k tokens, so the base mix reads it about
1.5 times over training and upsampling repeats it (up to about 4 epochs at f = 100%).
"""
from __future__ import annotations

import numpy as np

from shared.data.corpora import load_corpus
from shared.data.generated import arithmetic
from shared.data.lm_streams import register_source
from shared.eval._model_io import encode

MATH_SOURCE = "upsampling_math"
# One phrase per template of shared.data.generated.arithmetic._problem, in template order (0-9).
TEMPLATE_MARKERS = ("half as many", "babysitting", "change does", "and then buys", "boxes with",
                    "shares them equally", "A train travels", "times as many pages", "every week", "on sale for")
HELD_OUT_TEMPLATES = (7, 8, 9)        # pages read over two days, weekly savings, a percentage discount


def template_of(question: str) -> int:
    """The arithmetic template (0-9) a generated question comes from; ValueError unless exactly one matches."""
    hits = [i for i, marker in enumerate(TEMPLATE_MARKERS) if marker in question]
    if len(hits) != 1:
        raise ValueError(f"cannot tell the template of {question!r} (markers matched: {hits})")
    return hits[0]


def math_splits(n_train: int, n_test: int, seed: int = 0, held_out: tuple[int, ...] = HELD_OUT_TEMPLATES,
                max_number: int = 100) -> tuple[list[dict], list[dict]]:
    """(train, test) GSM8K-shaped problems {"question", "answer"}: train from the templates not in
    `held_out`, test from the templates in `held_out` (so no test problem shares a template with
    training). Deterministic in seed; ValueError if the generated pool holds too few of either."""
    if not held_out or not set(held_out) < set(range(len(TEMPLATE_MARKERS))):
        raise ValueError(f"held_out must be a proper, non-empty subset of templates 0-9, got {held_out}")
    share = len(held_out) / len(TEMPLATE_MARKERS)
    pool_size = int(2 * max(n_train / (1 - share), n_test / share)) + 50
    pool = arithmetic.generate_arithmetic(pool_size, seed, max_number)
    held = set(held_out)
    train = [r for r in pool if template_of(r["question"]) not in held][:n_train]
    test = [r for r in pool if template_of(r["question"]) in held][:n_test]
    if len(train) < n_train or len(test) < n_test:
        raise ValueError(f"pool of {pool_size} problems gave {len(train)} / {len(test)}, "
                         f"asked for {n_train} / {n_test}")
    return train, test


def math_documents(split: str, max_docs: int | None = None, seed: int = 0, n_train: int = 200, n_test: int = 100,
                   held_out: tuple[int, ...] = HELD_OUT_TEMPLATES, max_number: int = 100) -> list[str]:
    """Stream source "upsampling_math": the training (or test) problems of `math_splits` as documents
    ("Question: ...\\nAnswer: <worked steps>")."""
    train, test = math_splits(n_train, n_test, seed, tuple(held_out), max_number)
    docs = [arithmetic.to_text(r) for r in (train if split == "train" else test)]
    return docs[:max_docs] if max_docs is not None else docs


def code_heldout_windows(tokenizer, n_windows: int, max_tokens: int, seed: int = 0) -> list[list[int]]:
    """n_windows token windows of max_tokens (each a list[int]) from the held-out CPython modules
    (`code_stdlib` test split): every module is cut into consecutive windows and windows are taken
    round-robin over the modules, in a seeded module order, so many modules contribute."""
    modules = load_corpus("code_stdlib", "test")
    order = np.random.default_rng([seed, 7]).permutation(len(modules))
    per_module = []
    for i in order:
        ids = encode(tokenizer, modules[i])
        per_module.append([ids[k:k + max_tokens] for k in range(0, len(ids) - max_tokens + 1, max_tokens)])
    windows: list[list[int]] = []
    depth = 0
    while len(windows) < n_windows and any(depth < len(w) for w in per_module):
        windows += [w[depth] for w in per_module if depth < len(w)]
        depth += 1
    if len(windows) < n_windows:
        raise ValueError(f"the held-out modules give only {len(windows)} windows of {max_tokens} tokens")
    return windows[:n_windows]


register_source(MATH_SOURCE, math_documents)
