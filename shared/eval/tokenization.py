"""How a tokenizer cuts a domain's text: tokens per word, which terms stay whole, domain terms.

    tokens_per_word(tok, docs)            # fertility: tokens of the whole text / its words
    segment(tok, "inflammation")          # ["Ġinfl", "ammation"] -> shown as "infl|ammation"
    whole_word_rate(tok, words, counts)   # share of words (by type and by occurrence) that are 1 token
    domain_terms(domain_docs, general_docs, k)   # the words most over-represented in a domain

Words are runs of letters (`WORD`), counted case-sensitively. A word inside running text follows a
space, so it is tokenised as " word" (the byte-level BPE's "Ġword"); `segment` does the same unless
`leading_space=False`. Tokenizers are anything with `encode(str) -> ids` (transformers' fast
tokenizers are called without special tokens) and, for `segment`, `convert_ids_to_tokens`.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

from ._model_io import encode

WORD = re.compile(r"[A-Za-z]+")


def words(text: str) -> list[str]:
    return WORD.findall(text)


def word_counts(docs: Iterable[str]) -> Counter:
    counts: Counter = Counter()
    for d in docs:
        counts.update(words(d))
    return counts


def tokens_per_word(tokenizer, docs: Sequence[str]) -> float:
    """Tokens of the texts (each encoded whole) per word of them."""
    n_words = sum(len(words(d)) for d in docs)
    if n_words == 0:
        raise ValueError("the texts hold no words")
    return sum(len(encode(tokenizer, d)) for d in docs) / n_words


def bytes_per_token(tokenizer, docs: Sequence[str]) -> float:
    """UTF-8 bytes per token (higher: the tokenizer compresses the text better)."""
    n_tokens = sum(len(encode(tokenizer, d)) for d in docs)
    if n_tokens == 0:
        raise ValueError("the texts encode to no tokens")
    return sum(len(d.encode("utf-8")) for d in docs) / n_tokens


def word_token_count(tokenizer, word: str, leading_space: bool = True) -> int:
    return len(encode(tokenizer, (" " if leading_space else "") + word))


def segment(tokenizer, word: str, leading_space: bool = True) -> list[str]:
    """The pieces a word is cut into, as readable strings (byte-level markers 'Ġ' removed)."""
    ids = encode(tokenizer, (" " if leading_space else "") + word)
    pieces = tokenizer.convert_ids_to_tokens(ids)
    return [p.replace("Ġ", "") for p in pieces if p.replace("Ġ", "")] or [""]


def whole_word_rate(tokenizer, vocabulary: Sequence[str], counts: Counter | None = None) -> dict[str, float]:
    """Share of `vocabulary` encoded as one token (" word"): by type, and weighted by `counts`;
    also the mean tokens per word type and per occurrence."""
    if not vocabulary:
        raise ValueError("empty vocabulary")
    n = {w: word_token_count(tokenizer, w) for w in vocabulary}
    weights = {w: (counts[w] if counts is not None else 1) for w in vocabulary}
    total = sum(weights.values())
    return {"whole_by_type": sum(v == 1 for v in n.values()) / len(n),
            "whole_by_occurrence": sum(weights[w] for w, v in n.items() if v == 1) / total,
            "tokens_per_type": sum(n.values()) / len(n),
            "tokens_per_occurrence": sum(weights[w] * v for w, v in n.items()) / total}


def domain_terms(domain_docs: Iterable[str], general_docs: Iterable[str], k: int = 50, min_count: int = 3,
                 min_length: int = 6, min_log_ratio: float = 1.0, exclude: Iterable[str] = ()
                 ) -> list[tuple[str, int, float]]:
    """The k words most typical of a domain: [(word, domain count, log ratio)], best first.

    A word's log ratio is log of its domain frequency over its general frequency (add-one smoothed);
    words with a log ratio >= min_log_ratio are ranked by count x log ratio (their share of the
    domain's KL divergence from the general text), so frequent domain words come before rare ones.
    Only lower-case occurrences count (names and abbreviations such as 'Dunglison' or 'Physiol.'
    drop out); words need >= min_length letters, >= min_count occurrences, and not be in `exclude`.
    """
    exclude = set(exclude)
    dom = Counter(w for d in domain_docs for w in words(d) if w.islower())
    gen = Counter(w.lower() for d in general_docs for w in words(d))
    n_dom, n_gen = sum(dom.values()), sum(gen.values())
    if n_dom == 0 or n_gen == 0:
        raise ValueError("both corpora need words")
    scored = []
    for w, c in dom.items():
        if c < min_count or len(w) < min_length or w in exclude:
            continue
        ratio = math.log((c / n_dom) / ((gen[w] + 1) / n_gen))
        if ratio >= min_log_ratio:
            scored.append((w, c, ratio))
    scored.sort(key=lambda t: (-t[1] * t[2], t[0]))
    return scored[:k]
