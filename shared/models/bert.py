"""BERT-style bidirectional encoder: classic BERT, and MosaicBERT with every component a switch.

Classic BERT (Devlin et al. 2019) is a post-norm encoder: embeddings (token + learned absolute
position + token type) -> LayerNorm -> dropout, then n_layer blocks of
``x = LN(x + attn(x))`` and ``x = LN(x + mlp(x))``. With every switch off this module *is* that
model and loads transformers' ``BertModel`` / ``BertForMaskedLM`` / ``BertForSequenceClassification``
weights (``bert_hf.bert_from_hf`` / ``mlm_from_hf`` / ``classifier_from_hf``), reproducing their
outputs.

MosaicBERT (Portes et al., NeurIPS 2023) switches, each independent (BertConfig):
- ``alibi``: no position embeddings; attention scores get the symmetric ALiBi bias
  ``-slope_h * |i - j|`` (shared.kernels.alibi), so the model runs on sequences longer than it
  was trained on (``max_seq_len`` then bounds nothing).
- ``glu``: the feed-forward is a GeGLU, ``proj(gelu(gate x) * up x)`` with [gate | up] fused in one
  bias-free Linear (MosaicBERT's gated-linear-unit MLP), instead of ``proj(gelu(fc x))``.
- ``unpad``: a padded batch (B, S) is cut to its real tokens (T = attention_mask.sum()), every
  block runs on (T, d_model) with variable-length attention (``varlen_attention``: flash-attn
  varlen on GPU, SDPA per sequence on CPU), and the result is repadded to (B, S, d_model) at the
  end. Linear layers then cost T instead of B * S rows.
- ``low_precision_norm``: LayerNorms run in the autocast dtype (bf16 on GPU) instead of float32
  (shared.kernels.norms); identical to the float32 norm on a float32 CPU run.
The recipe parts of MosaicBERT that are not architecture (30% masking, bf16, the optimizer) live in
the data collator (shared.data.mlm) and the pretraining pipeline (shared.pipelines.mlm_pretrain).

Conventions
- ``forward`` returns hidden states (B, S, d_model) with exact zeros at padding positions, in both
  the padded and the unpadded path (transformers computes values there that no head reads).
  The heads (BertForMaskedLM, BertForSequenceClassification) return
  ``shared.models.output.ModelOutput(logits, loss)``.
- Vocabulary: the embedding matrix has ``padded_vocab_size`` rows (vocab_size rounded up to a
  multiple of 64, for GPU matmul efficiency); the MLM head returns logits sliced to vocab_size.
- Fused q/k/v: one Linear with rows [q | k | v]. Attention goes through ``shared.kernels.attention``
  (``attn_backend``: auto | flash | flex | sdpa | reference).
No distributed code here: parallelism is applied from outside (shared.train.distributed).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from shared.kernels.alibi import alibi_slopes
from shared.kernels.attention import BACKENDS, attention, varlen_attention
from shared.kernels.norms import LayerNorm
from shared.kernels.padding import pad_input, unpad_input
from shared.models.feedforward import FeedForward
from shared.models.output import ModelOutput
from shared.models.vocab import padded_vocab_size

MOSAIC_SWITCHES = ("alibi", "glu", "unpad", "low_precision_norm")


@dataclass
class BertConfig:
    """Encoder hyper-parameters; the defaults are BERT-base's (uncased vocabulary).

    dropout: hidden dropout (embeddings, attention output, MLP output); attn_dropout: on the
    attention probabilities (MosaicBERT uses 0.0). max_seq_len: rows of the learned position
    table (with ``alibi`` it only names the training length).
    """
    vocab_size: int = 30522
    n_layer: int = 12
    n_head: int = 12
    d_model: int = 768
    d_ff: int = 3072
    max_seq_len: int = 512
    type_vocab_size: int = 2
    pad_token_id: int = 0
    norm_eps: float = 1e-12
    dropout: float = 0.1
    attn_dropout: float = 0.1
    alibi: bool = False
    glu: bool = False
    unpad: bool = False
    low_precision_norm: bool = False
    attn_backend: str = "auto"
    init_std: float = 0.02

    def __post_init__(self):
        if self.attn_backend not in BACKENDS:
            raise ValueError(f"BertConfig.attn_backend={self.attn_backend!r}; valid choices: {', '.join(BACKENDS)}")
        if self.d_model % self.n_head:
            raise ValueError(f"d_model ({self.d_model}) must be a multiple of n_head ({self.n_head})")
        if min(self.vocab_size, self.n_layer, self.n_head, self.d_ff, self.max_seq_len, self.type_vocab_size) < 1:
            raise ValueError(f"every size must be >= 1, got {self}")
        if not (0.0 <= self.dropout < 1.0 and 0.0 <= self.attn_dropout < 1.0):
            raise ValueError(f"dropout and attn_dropout must be in [0, 1), got {self.dropout}, {self.attn_dropout}")
        for name in MOSAIC_SWITCHES:
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"BertConfig.{name} must be a bool, got {getattr(self, name)!r}")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    @property
    def padded_vocab_size(self) -> int:
        return padded_vocab_size(self.vocab_size)

    @property
    def is_classic(self) -> bool:
        """True when the weights mean what transformers' BERT weights mean (no alibi, no glu)."""
        return not (self.alibi or self.glu)


def mosaic_config(**kwargs) -> BertConfig:
    """A BertConfig with every MosaicBERT switch on and attention dropout off (as MosaicBERT trains)."""
    base = dict(alibi=True, glu=True, unpad=True, low_precision_norm=True, attn_dropout=0.0)
    return BertConfig(**{**base, **kwargs})


class Varlen(NamedTuple):
    """The unpadded layout's bookkeeping: cu_seqlens (B+1,) int32 and the longest sequence."""
    cu_seqlens: torch.Tensor
    max_seqlen: int


class BertEmbeddings(nn.Module):
    """token + (learned position) + token type -> LayerNorm -> dropout. Works on any leading shape."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.word = nn.Embedding(cfg.padded_vocab_size, cfg.d_model)
        self.position = None if cfg.alibi else nn.Embedding(cfg.max_seq_len, cfg.d_model)
        self.token_type = nn.Embedding(cfg.type_vocab_size, cfg.d_model)
        self.norm = LayerNorm(cfg.d_model, eps=cfg.norm_eps, low_precision=cfg.low_precision_norm)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, input_ids: torch.Tensor, positions: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        """ids, positions, token types: same shape (...,) long -> (..., d_model)."""
        x = self.word(input_ids) + self.token_type(token_type_ids)
        if self.position is not None:
            x = x + self.position(positions)
        return self.drop(self.norm(x))


class BertSelfAttention(nn.Module):
    """Bidirectional multi-head attention + output projection, on padded or unpadded tokens."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.cfg = cfg
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, slopes: torch.Tensor | None, key_padding_mask: torch.Tensor | None,
                varlen: Varlen | None) -> torch.Tensor:
        """Padded: x (B, S, d), key_padding_mask (B, S) bool or None. Unpadded: x (T, d) and
        varlen. Returns the same shape as x."""
        cfg = self.cfg
        p = cfg.attn_dropout if self.training else 0.0
        qkv = self.qkv(x).unflatten(-1, (3, cfg.n_head, cfg.head_dim))
        if varlen is not None:  # (T, 3, H, D)
            q, k, v = qkv.unbind(1)
            y = varlen_attention(q, k, v, varlen.cu_seqlens, varlen.max_seqlen, causal=False,
                                 alibi_slopes=slopes, dropout_p=p, backend=cfg.attn_backend)
        else:  # (B, S, 3, H, D) -> three (B, H, S, D)
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
            y = attention(q, k, v, causal=False, alibi_slopes=slopes, key_padding_mask=key_padding_mask,
                          dropout_p=p, backend=cfg.attn_backend).transpose(1, 2)
        return self.drop(self.proj(y.flatten(-2)))


class BertBlock(nn.Module):
    """Post-norm block: x = LN(x + attn(x)); x = LN(x + mlp(x))."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.attn = BertSelfAttention(cfg)
        self.norm1 = LayerNorm(cfg.d_model, eps=cfg.norm_eps, low_precision=cfg.low_precision_norm)
        # gelu: proj(gelu(fc x)); glu: proj(gelu(gate x) * up x), [gate | up] fused in a bias-free fc
        self.mlp = FeedForward(cfg.d_model, cfg.d_ff, gated=cfg.glu, activation="gelu", fc_bias=not cfg.glu,
                               proj_bias=True, dropout=cfg.dropout)
        self.norm2 = LayerNorm(cfg.d_model, eps=cfg.norm_eps, low_precision=cfg.low_precision_norm)

    def forward(self, x: torch.Tensor, slopes: torch.Tensor | None, key_padding_mask: torch.Tensor | None,
                varlen: Varlen | None) -> torch.Tensor:
        """Post-norm block. Padded: x (B, S, d_model); unpadded: x (T, d_model) with varlen.
        Returns the same shape as x."""
        x = self.norm1(x + self.attn(x, slopes, key_padding_mask, varlen))
        return self.norm2(x + self.mlp(x))


class Bert(nn.Module):
    """The encoder. forward(input_ids (B, S), attention_mask (B, S)) -> hidden states (B, S, d_model)."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.cfg = cfg
        self.embeddings = BertEmbeddings(cfg)
        self.blocks = nn.ModuleList(BertBlock(cfg) for _ in range(cfg.n_layer))
        if cfg.alibi:
            self.register_buffer("alibi_slopes", alibi_slopes(cfg.n_head), persistent=False)
        else:
            self.alibi_slopes = None
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        init_weights(self, self.cfg.init_std)
        self.embeddings.word.weight[self.cfg.vocab_size:].zero_()
        if self.alibi_slopes is not None:     # recomputed for a model materialised from the meta device
            self.alibi_slopes.copy_(alibi_slopes(self.cfg.n_head))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """input_ids (B, S) long; attention_mask (B, S), 1/True = real token (None: all real);
        token_type_ids (B, S) (None: all 0). Returns (B, S, d_model), zeros at padding positions.
        A batch without padding runs the padded path even when cfg.unpad (the same result)."""
        cfg = self.cfg
        batch, seq = input_ids.shape
        if not cfg.alibi and seq > cfg.max_seq_len:
            raise ValueError(f"sequence of {seq} tokens exceeds max_seq_len={cfg.max_seq_len} "
                             "(learned positions); ALiBi models take any length")
        for name, t in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids)):
            if t is not None and t.shape != input_ids.shape:
                raise ValueError(f"{name} must have input_ids' shape {tuple(input_ids.shape)}, got {tuple(t.shape)}")
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        positions = torch.arange(seq, device=input_ids.device).expand(batch, seq)
        mask = None if attention_mask is None or bool(attention_mask.all()) else attention_mask.bool()
        if cfg.unpad and mask is not None:  # without padding, unpadding would only add index copies
            stacked = torch.stack([input_ids, positions, token_type_ids], dim=-1)  # (B, S, 3)
            real, indices, cu_seqlens, max_seqlen = unpad_input(stacked, mask)   # (T, 3)
            x = self.embeddings(*real.unbind(-1))                                # (T, d)
            varlen = Varlen(cu_seqlens, max_seqlen)
            for block in self.blocks:
                x = block(x, self.alibi_slopes, None, varlen)
            return pad_input(x, indices, batch, seq)
        x = self.embeddings(input_ids, positions, token_type_ids)
        for block in self.blocks:
            x = block(x, self.alibi_slopes, mask, None)
        return x if mask is None else x * mask[..., None].to(x.dtype)

    # ---- accounting -------------------------------------------------------------------------
    def num_params(self, exclude_embeddings: bool = False) -> int:
        n = sum(p.numel() for p in self.parameters())
        if exclude_embeddings:
            n -= sum(p.numel() for m in (self.embeddings.word, self.embeddings.position, self.embeddings.token_type)
                     if m is not None for p in m.parameters())
        return n

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Encoder training FLOPs per (real) token: 6 N + 12 L H Q T (PaLM's accounting, full
        bidirectional attention matrix), N the non-embedding parameters, T = seq_len."""
        cfg = self.cfg
        seq_len = cfg.max_seq_len if seq_len is None else seq_len
        return 6.0 * self.num_params(exclude_embeddings=True) + 12.0 * cfg.n_layer * cfg.d_model * seq_len


class BertMLMHead(nn.Module):
    """dense -> gelu -> LayerNorm -> decoder (weight tied to the word embeddings, own bias)."""

    def __init__(self, cfg: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.cfg = cfg
        self.dense = nn.Linear(cfg.d_model, cfg.d_model)
        self.norm = LayerNorm(cfg.d_model, eps=cfg.norm_eps, low_precision=cfg.low_precision_norm)
        self.decoder = nn.Linear(cfg.d_model, cfg.padded_vocab_size)
        self.decoder.weight = word_embeddings.weight
        init_weights(self.dense, cfg.init_std)
        nn.init.zeros_(self.decoder.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """h (..., d_model) -> logits (..., vocab_size)."""
        logits = self.decoder(self.norm(F.gelu(self.dense(h))))
        return logits[..., :self.cfg.vocab_size]


class BertForMaskedLM(nn.Module):
    """Encoder + MLM head; forward returns a ModelOutput. Without labels: logits (B, S, vocab_size),
    loss None. With labels (B, S), -100 = not predicted: the head runs only at the M masked tokens
    (MosaicBERT does the same: at 15-30% masking most of the vocabulary projection is skipped), so
    logits are (M, vocab_size) in the row order of labels[labels != -100], and loss is their mean
    cross-entropy."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.cfg = cfg
        self.bert = Bert(cfg)
        self.head = BertMLMHead(cfg, self.bert.embeddings.word)
        self.blocks = self.bert.blocks  # what FSDP shards

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> ModelOutput:
        """input_ids (B, S), attention_mask (B, S) 1 = real token, token_type_ids (B, S), labels (B, S)
        -> ModelOutput(logits (B, S, vocab_size), None), or with labels
        ModelOutput(logits (M, vocab_size) at the M masked tokens, loss scalar)."""
        h = self.bert(input_ids, attention_mask, token_type_ids)
        if labels is None:
            return ModelOutput(self.head(h), None)
        selected = labels != -100
        targets = labels[selected]
        logits = self.head(h[selected])
        loss = F.cross_entropy(logits.float(), targets) if targets.numel() else logits.sum() * 0.0
        return ModelOutput(logits, loss)

    def flops_per_token(self, seq_len: int | None = None) -> float:
        return self.bert.flops_per_token(seq_len)


class BertForSequenceClassification(nn.Module):
    """Encoder + pooler (dense + tanh on the first token) + dropout + linear.

    num_labels > 1: classification (cross-entropy, integer labels); num_labels == 1: regression
    (mean squared error, float labels). forward -> ModelOutput(logits (B, num_labels), loss), loss
    None unless labels are given."""

    def __init__(self, cfg: BertConfig, num_labels: int):
        super().__init__()
        if num_labels < 1:
            raise ValueError(f"num_labels must be >= 1 (1 = regression), got {num_labels}")
        self.cfg, self.num_labels = cfg, num_labels
        self.bert = Bert(cfg)
        self.pooler = nn.Linear(cfg.d_model, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(cfg.d_model, num_labels)
        init_weights(self.pooler, cfg.init_std)
        init_weights(self.classifier, cfg.init_std)
        self.blocks = self.bert.blocks

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> ModelOutput:
        """input_ids (B, S), attention_mask (B, S), token_type_ids (B, S), labels (B,) ->
        ModelOutput(logits (B, num_labels), loss scalar or None without labels)."""
        h = self.bert(input_ids, attention_mask, token_type_ids)
        logits = self.classifier(self.drop(torch.tanh(self.pooler(h[:, 0]))))
        if labels is None:
            return ModelOutput(logits, None)
        if self.num_labels == 1:
            loss = F.mse_loss(logits.squeeze(-1).float(), labels.float())
        else:
            loss = F.cross_entropy(logits.float(), labels.long())
        return ModelOutput(logits, loss)

    def flops_per_token(self, seq_len: int | None = None) -> float:
        return self.bert.flops_per_token(seq_len)

    @classmethod
    def from_encoder(cls, encoder: Bert, num_labels: int, **switches) -> BertForSequenceClassification:
        """A classifier around a copy of a pretrained encoder's weights (fresh pooler and head).

        switches: BertConfig fields to change for finetuning (e.g. dropout, unpad, attn_backend)."""
        import dataclasses
        cfg = dataclasses.replace(encoder.cfg, **switches)
        model = cls(cfg, num_labels).to(next(encoder.parameters()).device)
        missing, unexpected = model.bert.load_state_dict(encoder.state_dict(), strict=False)
        if unexpected or missing:
            raise ValueError(f"encoder weights do not fit: missing {missing}, unexpected {unexpected}")
        return model


@torch.no_grad()
def init_weights(module: nn.Module, std: float) -> None:
    """BERT's init: normal(0, std) for linears and embeddings, zero biases, unit LayerNorms."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, std)
        elif isinstance(m, LayerNorm):
            nn.init.ones_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
