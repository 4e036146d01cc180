"""Vocabulary padding shared by the model families.

Embedding and LM-head matrices get ``padded_vocab_size(vocab_size)`` rows, the vocabulary rounded up
to a multiple of ``VOCAB_MULTIPLE`` (GPU matmuls are faster on such shapes); the padding rows are
zero-initialised and never produced by a tokenizer.
"""
from __future__ import annotations

import math

VOCAB_MULTIPLE = 64


def padded_vocab_size(vocab_size: int, multiple: int = VOCAB_MULTIPLE) -> int:
    """``vocab_size`` rounded up to a multiple of ``multiple`` (e.g. 50257 -> 50304)."""
    return multiple * math.ceil(vocab_size / multiple)


__all__ = ["VOCAB_MULTIPLE", "padded_vocab_size"]
