"""Tiny models and a character tokenizer for the shared.eval tests."""
from __future__ import annotations

import string

import torch
from torch import nn


class CharTokenizer:
    """One token per printable ASCII character; encode(str) -> list[int], decode(list[int]) -> str."""

    def __init__(self):
        self.chars = sorted(set(string.printable))
        self.stoi = {c: i for i, c in enumerate(self.chars)}
        self.vocab_size = len(self.chars)

    def encode(self, text: str) -> list[int]:
        return [self.stoi[c] for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(self.chars[i] for i in ids)


class TinyLM(nn.Module):
    """Random causal LM: embedding, a causal running mean, an MLP, and a head. (B, T) -> (B, T, V)."""

    def __init__(self, vocab_size: int, dim: int = 16, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.emb = nn.Embedding(vocab_size, dim)
        self.mlp = nn.Sequential(nn.Linear(2 * dim, dim), nn.Tanh(), nn.Linear(dim, vocab_size))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.emb(input_ids)                                            # (B, T, D)
        counts = torch.arange(1, x.shape[1] + 1, device=x.device)[None, :, None]
        prefix_mean = x.cumsum(dim=1) / counts                             # causal: positions <= t
        return self.mlp(torch.cat([x, prefix_mean], dim=-1))


class UniformLM(nn.Module):
    """All-zero logits: every token has probability 1/V, so the loss is exactly log V."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return torch.zeros(*input_ids.shape, self.vocab_size) + 0 * self.dummy


class SuccessorLM(nn.Module):
    """Predicts token (t + 1) mod V after token t with logit `margin` (others 0)."""

    def __init__(self, vocab_size: int, margin: float = 10.0):
        super().__init__()
        self.vocab_size, self.margin = vocab_size, margin

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        nxt = (input_ids + 1) % self.vocab_size
        return nn.functional.one_hot(nxt, self.vocab_size).float() * self.margin


class BiasLM(nn.Module):
    """Same logits at every position: a fixed preference for some tokens."""

    def __init__(self, vocab_size: int, favourite: dict[int, float]):
        super().__init__()
        self.bias = torch.zeros(vocab_size)
        for tok, value in favourite.items():
            self.bias[tok] = value

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.bias.expand(*input_ids.shape, -1).clone()
