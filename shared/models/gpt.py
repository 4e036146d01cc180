"""GPT-style decoder language model (nanoGPT-clear; Llama-compatible when configured so).

A pre-norm transformer decoder: token embedding (+ learned positions), n_layer blocks of
``x + attn(norm(x))`` and ``x + mlp(norm(x))``, a final norm and the LM head. Switches (GPTConfig):
positions rope | alibi | learned, norms layernorm | rmsnorm (optionally low precision), MLP gelu |
swiglu, grouped-query attention (n_kv_head < n_head), biases, tied embeddings. Attention goes
through the repo's one dispatch, ``shared.kernels.attention``.

Conventions
- Vocabulary: the embedding and LM-head matrices have ``padded_vocab_size`` rows (vocab_size
  rounded up to a multiple of 64, for GPU matmul efficiency); ``forward(...).logits`` is sliced back
  to ``vocab_size`` so shapes match the tokenizer. The padding rows are zero-initialised and unused.
- Packed sequences: ``forward(input_ids, doc_ids)`` restricts attention to each document, and for
  RoPE / learned positions the position index restarts at 0 at each document start (a document's
  first token is where doc_ids changes within a row). With ALiBi only relative distances matter.
- Layout inside attention: (batch, heads, seq, head_dim), as the dispatch expects.
- Fused projections: one Linear makes q, k, v (rows [q | k | v]); for SwiGLU one Linear makes the
  gate and up projections (rows [gate | up]). ``gpt_hf.py`` splits / joins them for transformers.
- Output: ``forward`` returns ``shared.models.output.ModelOutput(logits, loss)``.
- Training loss: ``forward(input_ids, doc_ids, targets=targets).loss`` is the mean next-token
  cross-entropy through a fused, chunked LM head (shared.kernels.linear_cross_entropy): the same
  value and gradients as cross-entropy on the logits, without materialising (tokens, vocab).
- Positions limit: RoPE and learned positions need start + seq <= max_seq_len; ALiBi has no
  position table, so it runs (extrapolates) past max_seq_len.
- Init: normal(0, init_std) for linears and embeddings, biases zero; the two residual output
  projections per block use init_std / sqrt(2 * n_layer) (GPT-2's scaled residual init).
No distributed code here: parallelism is applied from outside (shared.train.distributed).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from shared.kernels.alibi import alibi_slopes
from shared.kernels.attention import BACKENDS, attention
from shared.kernels.linear_cross_entropy import linear_cross_entropy
from shared.kernels.norms import LayerNorm, RMSNorm, build_norm
from shared.models.feedforward import FeedForward
from shared.models.gpt_generate import KVCache
from shared.models.gpt_generate import generate as _generate
from shared.models.output import ModelOutput
from shared.models.rope import apply_rope, positions_from_doc_ids, rope_tables
from shared.models.vocab import padded_vocab_size

_CHOICES = {"position": ("rope", "alibi", "learned"), "norm": ("layernorm", "rmsnorm"), "mlp": ("gelu", "swiglu")}


@dataclass
class GPTConfig:
    """Decoder hyper-parameters. n_kv_head None -> n_head; d_ff None -> 4 d_model (gelu) or
    8/3 d_model rounded up to a multiple of 64 (swiglu, as Llama keeps the parameter count)."""
    vocab_size: int = 8192
    n_layer: int = 4
    n_head: int = 4
    n_kv_head: int | None = None
    d_model: int = 256
    d_ff: int | None = None
    max_seq_len: int = 256
    position: str = "rope"
    norm: str = "rmsnorm"
    low_precision_norm: bool = False
    mlp: str = "swiglu"
    tie_embeddings: bool = False
    bias: bool = False
    dropout: float = 0.0
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    attn_backend: str = "auto"
    init_std: float = 0.02

    def __post_init__(self):
        for field, choices in _CHOICES.items():
            if getattr(self, field) not in choices:
                raise ValueError(f"GPTConfig.{field}={getattr(self, field)!r}; valid choices: {', '.join(choices)}")
        if self.attn_backend not in BACKENDS:
            raise ValueError(f"GPTConfig.attn_backend={self.attn_backend!r}; valid choices: {', '.join(BACKENDS)}")
        if self.n_kv_head is None:
            self.n_kv_head = self.n_head
        if self.d_model % self.n_head or self.n_head % self.n_kv_head:
            raise ValueError(f"need d_model % n_head == 0 and n_head % n_kv_head == 0; got d_model={self.d_model}, "
                             f"n_head={self.n_head}, n_kv_head={self.n_kv_head}")
        if self.position == "rope" and self.head_dim % 2:
            raise ValueError(f"RoPE needs an even head_dim, got {self.head_dim}")
        if self.d_ff is None:
            self.d_ff = 4 * self.d_model if self.mlp == "gelu" else 64 * math.ceil(8 * self.d_model / 3 / 64)
        if min(self.vocab_size, self.n_layer, self.max_seq_len, self.d_ff) < 1 or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"invalid sizes or dropout in {self}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    @property
    def padded_vocab_size(self) -> int:
        return padded_vocab_size(self.vocab_size)

    @property
    def is_llama_shaped(self) -> bool:
        return self.position == "rope" and self.norm == "rmsnorm" and self.mlp == "swiglu" and not self.bias


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.qkv = nn.Linear(cfg.d_model, (cfg.n_head + 2 * cfg.n_kv_head) * cfg.head_dim, bias=cfg.bias)
        self.proj = nn.Linear(cfg.n_head * cfg.head_dim, cfg.d_model, bias=cfg.bias)
        self.resid_drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None,
                slopes: torch.Tensor | None, doc_ids: torch.Tensor | None,
                cache: KVCache | None, layer: int) -> torch.Tensor:
        """x (B, S, d_model) -> (B, S, d_model)."""
        cfg = self.cfg
        batch, seq, _ = x.shape
        qkv = self.qkv(x).view(batch, seq, cfg.n_head + 2 * cfg.n_kv_head, cfg.head_dim)
        # split (not slicing): its backward is one cat, where each slice's would zero-fill a full-size grad
        qk, v = qkv.split([cfg.n_head + cfg.n_kv_head, cfg.n_kv_head], dim=2)
        if rope is not None:  # q and k rotated in one pass, in the activations' dtype (bf16 under autocast)
            qk = apply_rope(qk, rope[0].to(qk.dtype), rope[1].to(qk.dtype))
        q, k = (t.transpose(1, 2) for t in qk.split([cfg.n_head, cfg.n_kv_head], dim=2))
        v = v.transpose(1, 2)
        if cache is not None:
            k, v = cache.update(layer, k, v)
        y = attention(q, k, v, causal=True, alibi_slopes=slopes, doc_ids=doc_ids,
                      dropout_p=cfg.dropout if self.training else 0.0, backend=cfg.attn_backend)
        y = y.transpose(1, 2).reshape(batch, seq, cfg.n_head * cfg.head_dim)
        return self.resid_drop(self.proj(y))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        norm = dict(kind=cfg.norm, dim=cfg.d_model, eps=cfg.norm_eps, bias=cfg.bias,
                    low_precision=cfg.low_precision_norm)
        self.norm1, self.attn = build_norm(**norm), CausalSelfAttention(cfg)
        self.norm2 = build_norm(**norm)
        # gelu: proj(gelu(fc x)); swiglu: proj(silu(gate x) * up x) with [gate | up] fused in fc
        self.mlp = FeedForward(cfg.d_model, cfg.d_ff, gated=cfg.mlp == "swiglu",
                               activation="silu" if cfg.mlp == "swiglu" else "gelu",
                               fc_bias=cfg.bias, proj_bias=cfg.bias, dropout=cfg.dropout)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None,
                slopes: torch.Tensor | None, doc_ids: torch.Tensor | None,
                cache: KVCache | None, layer: int) -> torch.Tensor:
        """x (B, S, d_model) -> (B, S, d_model): x + attn(norm1 x), then + mlp(norm2 x).

        rope: (cos, sin) tables indexed to these positions; slopes (n_head,) ALiBi or None;
        doc_ids (B, S) packed documents or None; cache / layer: this block's KV-cache slot."""
        x = x + self.attn(self.norm1(x), rope, slopes, doc_ids, cache, layer)
        return x + self.mlp(self.norm2(x))


class GPT(nn.Module):
    """Decoder LM. forward(input_ids (B, S) long, doc_ids (B, S) | None) -> ModelOutput whose logits are
    (B, S, vocab_size); with targets, ModelOutput whose loss is the scalar next-token cross-entropy."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.padded_vocab_size, cfg.d_model)
        self.wpe = nn.Embedding(cfg.max_seq_len, cfg.d_model) if cfg.position == "learned" else None
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm_f = build_norm(cfg.norm, cfg.d_model, cfg.norm_eps, cfg.bias, cfg.low_precision_norm)
        self.lm_head = nn.Linear(cfg.d_model, cfg.padded_vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.wte.weight
        if cfg.position == "rope":
            cos, sin = rope_tables(cfg.head_dim, cfg.max_seq_len, cfg.rope_theta)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        if cfg.position == "alibi":
            self.register_buffer("alibi_slopes", alibi_slopes(cfg.n_head), persistent=False)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        std, resid_std = self.cfg.init_std, self.cfg.init_std / math.sqrt(2 * self.cfg.n_layer)
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, resid_std if name.endswith(".proj") else std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, 0.0, std)
            elif isinstance(module, (LayerNorm, RMSNorm)):
                nn.init.ones_(module.weight)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
        self.wte.weight[self.cfg.vocab_size:].zero_()
        self.lm_head.weight[self.cfg.vocab_size:].zero_()
        # the non-persistent tables too, so a model built on the meta device and then materialised
        # (`to_empty` + `reset_parameters`, see shared.train.distributed) has them
        if self.cfg.position == "rope":
            cos, sin = rope_tables(self.cfg.head_dim, self.cfg.max_seq_len, self.cfg.rope_theta)
            self.rope_cos.copy_(cos)
            self.rope_sin.copy_(sin)
        if self.cfg.position == "alibi":
            self.alibi_slopes.copy_(alibi_slopes(self.cfg.n_head))

    def forward(self, input_ids: torch.Tensor, doc_ids: torch.Tensor | None = None, *,
                targets: torch.Tensor | None = None, ignore_index: int = -100,
                cache: KVCache | None = None) -> ModelOutput:
        """input_ids (B, S) -> ModelOutput(logits (B, S, vocab_size), loss None).

        doc_ids (B, S): packed documents (attention within each, positions restart at each start).
        targets (B, S): return instead ModelOutput(logits None, loss scalar), the mean next-token
        cross-entropy (targets[b, t] is the token after input_ids[b, t], ignore_index skipped),
        computed by the fused, chunked LM-head loss (shared.kernels.linear_cross_entropy) without
        materialising the logits. It reads lm_head.weight inside this forward: under FSDP2 keep
        lm_head in the root's group.
        cache: a KVCache for incremental decoding (generate() manages it).
        """
        h = self.hidden_states(input_ids, doc_ids, cache=cache)
        cfg = self.cfg
        if targets is not None:
            if targets.shape != input_ids.shape:
                raise ValueError(f"targets must be (batch, seq) = {tuple(input_ids.shape)}, got {tuple(targets.shape)}")
            loss = linear_cross_entropy(h.flatten(0, 1), self.lm_head.weight, targets.flatten(),
                                        vocab_size=cfg.vocab_size, ignore_index=ignore_index)
            return ModelOutput(None, loss)
        logits = self.lm_head(h)
        return ModelOutput(logits if cfg.padded_vocab_size == cfg.vocab_size else logits[..., :cfg.vocab_size], None)

    def hidden_states(self, input_ids: torch.Tensor, doc_ids: torch.Tensor | None = None, *,
                      cache: KVCache | None = None) -> torch.Tensor:
        """input_ids (B, S) -> final-norm hidden states (B, S, d_model), the LM head's input."""
        cfg = self.cfg
        batch, seq = input_ids.shape
        start = 0 if cache is None else cache.length
        if doc_ids is not None and (cache is not None or doc_ids.shape != input_ids.shape):
            raise ValueError(f"doc_ids must be (batch, seq) = {tuple(input_ids.shape)} and cannot be "
                             f"combined with a KV cache; got {tuple(doc_ids.shape)}")
        if cfg.position != "alibi" and start + seq > cfg.max_seq_len:
            raise ValueError(f"sequence of {start + seq} tokens exceeds max_seq_len={cfg.max_seq_len}")
        pos = positions_from_doc_ids(doc_ids) if doc_ids is not None else None  # (B, S) or None
        x = self.wte(input_ids)
        if self.wpe is not None:
            x = x + (self.wpe(pos) if pos is not None else self.wpe.weight[start:start + seq])
        x = self.drop(x)
        rope = None
        if cfg.position == "rope":
            idx = pos if pos is not None else slice(start, start + seq)
            rope = (self.rope_cos[idx], self.rope_sin[idx])
        slopes = self.alibi_slopes if cfg.position == "alibi" else None
        for layer, block in enumerate(self.blocks):
            x = block(x, rope, slopes, doc_ids, cache, layer)
        if cache is not None:
            cache.advance(seq)
        return self.norm_f(x)

    # ---- accounting -------------------------------------------------------------------------
    def num_params(self, exclude_embeddings: bool = False) -> int:
        """Parameter count (shared tensors once). exclude_embeddings drops the token and position
        embeddings and the LM head (Kaplan et al.'s "non-embedding" N); padded rows are counted."""
        params = {id(p): p for p in self.parameters()}
        if exclude_embeddings:
            for p in (self.wte.weight, self.lm_head.weight, None if self.wpe is None else self.wpe.weight):
                if p is not None:
                    params.pop(id(p), None)
        return sum(p.numel() for p in params.values())

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs per token, PaLM's MFU accounting (Chowdhery et al. 2022, App. B):
        6 N + 12 L H Q T, N = non-embedding params + the LM head's d_model * vocab_size (a matmul),
        L layers, H query heads, Q head_dim, T = seq_len (default max_seq_len; full attention
        matrix, as PaLM counts it). The trainer calls it with no argument."""
        cfg = self.cfg
        seq_len = cfg.max_seq_len if seq_len is None else seq_len
        n = self.num_params(exclude_embeddings=True) + cfg.d_model * cfg.vocab_size
        return 6.0 * n + 12.0 * cfg.n_layer * cfg.n_head * cfg.head_dim * seq_len

    def configure_optimizer_groups(self, weight_decay: float) -> list[dict]:
        """AdamW groups: decay on matmul weights (dim >= 2); none on norms, biases, embeddings."""
        embeddings = {id(self.wte.weight)} | ({id(self.wpe.weight)} if self.wpe is not None else set())
        decay, no_decay, seen = [], [], set()
        for p in self.parameters():
            if id(p) in seen or not p.requires_grad:
                continue
            seen.add(id(p))
            (decay if p.dim() >= 2 and id(p) not in embeddings else no_decay).append(p)
        return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]

    # ---- generation ----------------------------------------------------------------------
    def generate(self, input_ids: torch.Tensor, max_new_tokens: int, temperature: float = 0.0,
                 top_k: int | None = None, eos_id: int | None = None, use_cache: bool = True,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Continue (B, T) prompts; returns (B, T + n) ids, n <= max_new_tokens. temperature 0 is
        greedy. After a row emits eos_id it is padded with eos_id; stops early when all rows have."""
        return _generate(self, input_ids, max_new_tokens, temperature, top_k, eos_id, use_cache, generator)
