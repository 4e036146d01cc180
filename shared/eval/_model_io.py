"""Small adapters so the evaluators accept any causal LM and any tokenizer.

A model is any callable ``model(input_ids: LongTensor (B, T)) -> logits (B, T, V)``; outputs that are
objects with ``.logits`` (this repository's ``ModelOutput``, transformers' outputs) or tuples (logits
first) are unwrapped. A tokenizer is
anything with ``encode(str) -> list[int]`` and ``decode(list[int]) -> str``; transformers
tokenizers are called without special tokens so that encode(a) + encode(b) concatenates cleanly.
"""
from __future__ import annotations

import torch


def logits_of(output) -> torch.Tensor:
    """Unwrap a model's output to the (B, T, V) logits tensor."""
    if isinstance(output, torch.Tensor):
        return output
    if hasattr(output, "logits"):
        return output.logits
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise TypeError(f"model output must be logits (B, T, V), an object with .logits or a tuple; "
                    f"got {type(output).__name__}")


def model_device(model) -> torch.device:
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration, TypeError):
        return torch.device("cpu")


def model_max_length(model) -> int | None:
    """The model's context length if it declares one (cfg.max_seq_len, config.n_positions, ...)."""
    for holder in (getattr(model, "cfg", None), getattr(model, "config", None)):
        for name in ("max_seq_len", "block_size", "n_positions", "max_position_embeddings"):
            value = getattr(holder, name, None) if holder is not None else None
            if isinstance(value, int) and value > 0:
                return value
    return None


def encode(tokenizer, text: str) -> list[int]:
    """Token ids of `text` without BOS/EOS added by transformers tokenizers."""
    try:
        ids = tokenizer.encode(text, add_special_tokens=False)
    except TypeError:
        ids = tokenizer.encode(text)
    if hasattr(ids, "ids"):  # a `tokenizers.Tokenizer` returns an Encoding
        ids = ids.ids
    return list(ids)


def decode(tokenizer, ids: list[int]) -> str:
    try:
        return tokenizer.decode(list(ids), skip_special_tokens=True)
    except TypeError:
        return tokenizer.decode(list(ids))


def eos_id(tokenizer) -> int | None:
    value = getattr(tokenizer, "eos_token_id", None)
    return value if isinstance(value, int) else None
