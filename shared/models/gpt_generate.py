"""KV cache and autoregressive decoding for ``shared.models.gpt.GPT``."""
from __future__ import annotations

import torch


class KVCache:
    """Preallocated keys/values for every layer: (n_layer, batch, kv_heads, max_len, head_dim).

    Each layer writes its new k, v at [length, length + S) and reads [0, length + S); the model
    calls ``advance(S)`` once after all layers ran. The buffers are allocated at the first write,
    with that k's dtype and device (so a cache filled under autocast holds bf16).
    """

    def __init__(self, n_layer: int, max_len: int):
        self.n_layer, self.max_len = n_layer, max_len
        self.k: torch.Tensor | None = None
        self.v: torch.Tensor | None = None
        self.length = 0

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """k, v (batch, kv_heads, S, head_dim) -> all keys/values so far (batch, kv_heads, length+S, head_dim)."""
        if self.k is None:
            batch, kv_heads, _, head_dim = k.shape
            shape = (self.n_layer, batch, kv_heads, self.max_len, head_dim)
            self.k = k.new_zeros(shape)
            self.v = v.new_zeros(shape)
        end = self.length + k.shape[2]
        if end > self.max_len:
            raise ValueError(f"KV cache overflow: {end} > max_len {self.max_len}")
        self.k[layer, :, :, self.length:end] = k
        self.v[layer, :, :, self.length:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]

    def advance(self, n: int) -> None:
        self.length += n


def sample_next(logits: torch.Tensor, temperature: float, top_k: int | None,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """logits (B, V) -> next ids (B,). temperature 0: argmax; else softmax(logits / T) over the top_k."""
    if temperature == 0.0:
        return logits.argmax(dim=-1)
    logits = logits.float() / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


@torch.no_grad()
def generate(model, input_ids: torch.Tensor, max_new_tokens: int, temperature: float = 0.0,
             top_k: int | None = None, eos_id: int | None = None, use_cache: bool = True,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, T) prompt ids -> (B, T + n) with n <= max_new_tokens new tokens. Runs in eval mode."""
    if temperature < 0 or max_new_tokens < 0 or (top_k is not None and top_k < 1):
        raise ValueError(f"need temperature >= 0, max_new_tokens >= 0, top_k >= 1; got {temperature}, "
                         f"{max_new_tokens}, {top_k}")
    if max_new_tokens == 0:
        return input_ids
    was_training = model.training
    model.eval()
    try:
        batch, prompt_len = input_ids.shape
        cache = KVCache(len(model.blocks), prompt_len + max_new_tokens) if use_cache else None
        logits = model(input_ids, cache=cache).logits[:, -1]
        out = [input_ids]
        finished = torch.zeros(batch, dtype=torch.bool, device=input_ids.device)
        for step in range(max_new_tokens):
            nxt = sample_next(logits, temperature, top_k, generator)
            if eos_id is not None:
                nxt = torch.where(finished, torch.full_like(nxt, eos_id), nxt)
                finished |= nxt == eos_id
            out.append(nxt[:, None])
            if step == max_new_tokens - 1 or (eos_id is not None and bool(finished.all())):
                break
            logits = (model(nxt[:, None], cache=cache) if use_cache else model(torch.cat(out, dim=1))).logits[:, -1]
        return torch.cat(out, dim=1)
    finally:
        model.train(was_training)
