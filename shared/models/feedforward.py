"""The transformer feed-forward block shared by the decoder (gpt.py) and the encoder (bert.py).

    plain:  proj(act(fc x))                      fc: d_model -> d_ff
    gated:  proj(act(gate x) * up x)             fc: d_model -> 2 d_ff, rows [gate | up] in one Linear

act "gelu" + gated is MosaicBERT's GLU; act "silu" + gated is Llama's SwiGLU. Parameter names
(fc, proj) are what the transformers converters (gpt_hf.py, bert_hf.py) split and join.
x: (..., d_model) -> (..., d_model).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {"gelu": F.gelu, "silu": F.silu}


class FeedForward(nn.Module):
    def __init__(self, d_model: int, d_ff: int, *, gated: bool, activation: str, fc_bias: bool, proj_bias: bool,
                 dropout: float = 0.0):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation={activation!r}; valid choices: {', '.join(ACTIVATIONS)}")
        self.gated = gated
        self.act = ACTIVATIONS[activation]
        self.fc = nn.Linear(d_model, (2 if gated else 1) * d_ff, bias=fc_bias)
        self.proj = nn.Linear(d_ff, d_model, bias=proj_bias)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., d_model) -> (..., d_model): proj(act(fc x)), or proj(act(gate x) * up x) when gated."""
        h = self.fc(x)
        if self.gated:
            gate, up = h.chunk(2, dim=-1)
            h = self.act(gate) * up
        else:
            h = self.act(h)
        return self.drop(self.proj(h))
