"""Seeded random streams that do not shift each other: one numpy Generator per (seed, keys...)."""
from __future__ import annotations

import zlib

import numpy as np


def rng_for(seed: int, *keys: int | str) -> np.random.Generator:
    """A Generator for (seed, *keys). Strings are hashed with CRC32 (stable across processes, unlike
    Python's hash), so e.g. rng_for(0, "perm", "web", 3) is the same everywhere."""
    key = [int(seed)] + [zlib.crc32(k.encode("utf-8")) if isinstance(k, str) else int(k) for k in keys]
    return np.random.default_rng(key)
