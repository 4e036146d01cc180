"""Helpers shared by the generated domains: made-up names, unique draws (seeding: shared.data.rng)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np

from shared.data.rng import rng_for

T = TypeVar("T")

FIRST_NAMES = ("Ada", "Ben", "Cora", "Dan", "Eva", "Finn", "Gia", "Hugo", "Iris", "Jack", "Kai", "Lena",
               "Milo", "Nora", "Omar", "Pia", "Quinn", "Rosa", "Sam", "Tara", "Uma", "Vic", "Wes", "Zoe")
# she/he per first name, so sentences agree
PRONOUNS = {n: ("she" if n in {"Ada", "Cora", "Eva", "Gia", "Iris", "Lena", "Nora", "Pia", "Rosa",
                               "Tara", "Uma", "Zoe"} else "he") for n in FIRST_NAMES}

_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "kr", "st",
           "tr", "th", "sh", "ch", "gl", "pl")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ou", "ea", "io")
_CODAS = ("", "", "", "n", "r", "s", "l", "th", "x", "m")


def made_up_word(rng: np.random.Generator, min_syllables: int = 2, max_syllables: int = 3) -> str:
    """A pronounceable capitalised non-word, e.g. 'Trevoulan'."""
    n = int(rng.integers(min_syllables, max_syllables + 1))
    parts = [_ONSETS[rng.integers(len(_ONSETS))] + _VOWELS[rng.integers(len(_VOWELS))] for _ in range(n)]
    return ("".join(parts) + _CODAS[rng.integers(len(_CODAS))]).capitalize()


def unique_words(rng: np.random.Generator, n: int, taken: set[str] | None = None,
                 min_syllables: int = 2, max_syllables: int = 2) -> list[str]:
    """n distinct made-up words, none in `taken` (which is updated)."""
    taken = set() if taken is None else taken
    out: list[str] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 100 * n + 1000:
            raise ValueError(f"could not make {n} distinct words; ask for fewer")
        w = made_up_word(rng, min_syllables, max_syllables)
        if w not in taken:
            taken.add(w)
            out.append(w)
    return out


def choice(rng: np.random.Generator, options: Sequence[T]) -> T:
    return options[int(rng.integers(len(options)))]


def generate_unique(make: Callable[[np.random.Generator], dict], n: int, seed: int, key: str,
                    stream: str) -> list[dict]:
    """Call `make(rng)` until n records with distinct `record[key]`; ValueError if the space runs out."""
    rng = rng_for(seed, stream)
    seen: set[str] = set()
    out: list[dict] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise ValueError(f"{stream}: only {len(out)} distinct records after {attempts} tries; "
                             f"ask for fewer than {n} or widen the generator's ranges")
        r = make(rng)
        if r[key] not in seen:
            seen.add(r[key])
            out.append(r)
    return out
