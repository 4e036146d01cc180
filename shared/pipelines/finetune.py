"""Supervised finetuning of a causal LM on (prompt, response) pairs: the encoding both finetuning
papers use (instruction finetuning in lora_vs_full, answer generation in biomedlm).

    batch = encode_prompt_response(tokenizer, [("Question: 2+2?\\nAnswer:", " 4")], max_tokens=129)
    batch["input_ids"], batch["targets"], batch["loss_mask"]        # (N, T) each; T <= max_tokens - 1

A row is prompt + response + EOS (the two texts encoded separately, so the response's tokens never
merge with the prompt's), cut to `max_tokens` tokens, keeping its start (`keep="start"`: a long
response loses its end; a row whose prompt alone fills the window is dropped, with a warning) or its
end (`keep="end"`: a long prompt loses its beginning, the response is kept). Rows are right-padded,
so a causal model needs no attention mask; the loss mask is True where the target is a response
token or the EOS. shared.train.lm.lm_loss and the transformers-model losses read it.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch

from shared.eval._model_io import encode

KEEP = ("start", "end")


def encode_prompt_response(tokenizer, pairs: Sequence[tuple[str, str]], max_tokens: int, *, keep: str = "start",
                           pad_id: int | None = None, dtype: torch.dtype = torch.int64) -> dict[str, torch.Tensor]:
    """(prompt, response) text pairs -> {"input_ids", "targets", "loss_mask"}, each (N, T).

    max_tokens: the most tokens of a row (prompt + response + EOS); T = the longest kept row - 1.
    keep: "start" or "end" (module docstring). pad_id: the padding id (default: the tokenizer's pad
    token, else EOS). dtype: of input_ids and targets (loss_mask is bool). targets[:, t] is the token
    after input_ids[:, t]."""
    if keep not in KEEP:
        raise ValueError(f"keep={keep!r}; valid choices: {', '.join(KEEP)}")
    if not pairs:
        raise ValueError("no (prompt, response) pairs given")
    eos = tokenizer.eos_token_id
    if pad_id is None:
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    rows, starts, dropped = [], [], 0
    for prompt, response in pairs:
        p = encode(tokenizer, prompt)
        r = encode(tokenizer, response) + [eos]
        if keep == "start":
            seq = (p + r)[:max_tokens]
            if len(p) < 1 or len(seq) <= len(p):          # the prompt fills the window: nothing to learn
                dropped += 1
                continue
            start = len(p)
        else:
            seq = (p + r)[-max_tokens:]
            start = max(len(seq) - len(r), 1)               # the first response token (never the first token)
        rows.append(seq)
        starts.append(start)
    if not rows:
        raise ValueError(f"every prompt fills max_tokens={max_tokens}: no response token left to train on")
    if dropped:
        warnings.warn(f"dropped {dropped} of {len(pairs)} examples whose prompt fills max_tokens={max_tokens}",
                      stacklevel=2)
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=dtype)
    mask = torch.zeros((len(rows), width - 1), dtype=torch.bool)
    for i, (seq, start) in enumerate(zip(rows, starts)):
        ids[i, :len(seq)] = torch.tensor(seq, dtype=dtype)
        mask[i, start - 1:len(seq) - 1] = True            # position t predicts token t + 1
    return {"input_ids": ids[:, :-1].contiguous(), "targets": ids[:, 1:].contiguous(), "loss_mask": mask}


__all__ = ["KEEP", "encode_prompt_response"]
