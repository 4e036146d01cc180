"""Masked-language-model data: encoding documents, dynamic masking, masking-rate schedules.

    data = encode_for_mlm(texts, tokenizer, seq_len=128)          # {"input_ids", "attention_mask"} (N, S)
    schedule = MaskingSchedule("linear", 0.30, 0.15)               # Ankner et al.: 30% -> 15%
    ids, labels = mask_tokens(data["input_ids"], data["attention_mask"], schedule(0.2), SpecialIds.of(tokenizer))
    eval_batches = fixed_rate_batches(eval_data, 0.15, special, batch_size=64)   # always 15%

Samples follow BERT / MosaicBERT on C4: one document per sample, ``[CLS] tokens [SEP]``, truncated
to seq_len and padded (no concatenation), so short documents leave padding that unpadding removes.

Dynamic masking (RoBERTa; BERT's 80/10/10): each real, non-special token is selected with
probability p; a selected token becomes [MASK] with probability 0.8, a uniformly drawn non-special
token with 0.1, and stays itself with 0.1; labels hold the original id at selected tokens and -100
elsewhere. ``mask_generator(seed, rank, draw)`` seeds the draw of one batch, so a sampler that
counts its draws (``shared.pipelines.mlm_pretrain.MLMBatches``) resumes with exactly the masks an
uninterrupted run draws.

The rate p is a function of training progress t = step / max_steps (``MaskingSchedule``).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from shared.utils.config import StrictConfig

SCHEDULE_KINDS = ("constant", "linear", "cosine", "step")


@dataclass(frozen=True)
class MaskingSchedule(StrictConfig):
    """Masking rate as a function of training progress t in [0, 1] (``MaskingSchedule.from_dict(d)``
    builds one strictly from a preset's dict).

    constant: p_i throughout (p_f ignored). linear: p_i + (p_f - p_i) t (Ankner et al. 2024).
    cosine: half-cosine from p_i to p_f. step: p_i until t = step_at, then p_f.
    """
    kind: str = "constant"
    p_i: float = 0.15
    p_f: float | None = None
    step_at: float = 0.5

    def __post_init__(self):
        if self.kind not in SCHEDULE_KINDS:
            raise ValueError(f"MaskingSchedule.kind={self.kind!r}; valid choices: {', '.join(SCHEDULE_KINDS)}")
        if self.kind != "constant" and self.p_f is None:
            raise ValueError(f"a {self.kind!r} masking schedule needs p_f")
        for p in (self.p_i, self.p_f):
            if p is not None and not 0.0 < p < 1.0:
                raise ValueError(f"masking rates must be in (0, 1), got {p}")
        if not 0.0 <= self.step_at <= 1.0:
            raise ValueError(f"step_at must be in [0, 1], got {self.step_at}")

    def __call__(self, progress: float) -> float:
        t = min(1.0, max(0.0, progress))
        if self.kind == "constant":
            return self.p_i
        if self.kind == "linear":
            return self.p_i + (self.p_f - self.p_i) * t
        if self.kind == "cosine":
            return self.p_f + (self.p_i - self.p_f) * 0.5 * (1.0 + math.cos(math.pi * t))
        return self.p_i if t < self.step_at else self.p_f

    @property
    def label(self) -> str:
        """A short name, e.g. 'fixed 15%' or 'linear 30%->15%'."""
        if self.kind == "constant":
            return f"fixed {100 * self.p_i:.0f}%"
        return f"{self.kind} {100 * self.p_i:.0f}%->{100 * self.p_f:.0f}%"


@dataclass(frozen=True)
class SpecialIds:
    """Token ids the collator needs: mask, pad, cls, sep, every special id, and the vocabulary size."""
    mask: int
    pad: int
    cls: int
    sep: int
    special: tuple[int, ...]
    vocab_size: int

    @classmethod
    def of(cls, tokenizer) -> SpecialIds:
        """From a transformers tokenizer that has mask, pad, cls and sep tokens."""
        ids = {name: getattr(tokenizer, f"{name}_token_id") for name in ("mask", "pad", "cls", "sep")}
        missing = [n for n, i in ids.items() if i is None]
        if missing:
            raise ValueError(f"the tokenizer has no {missing} token(s); train it with "
                             "shared.data.tokenizer.ENCODER_SPECIAL_TOKENS")
        return cls(**ids, special=tuple(sorted(set(tokenizer.all_special_ids))), vocab_size=len(tokenizer))

    def replacement_ids(self) -> torch.Tensor:
        """The ids a selected token may be replaced by at random (every non-special id)."""
        keep = torch.ones(self.vocab_size, dtype=torch.bool)
        keep[list(self.special)] = False
        return keep.nonzero().flatten()


def encode_for_mlm(texts: Sequence[str], tokenizer, seq_len: int, special: SpecialIds | None = None,
                   batch_size: int = 1000) -> dict[str, torch.Tensor]:
    """One sample per text: [CLS] tokens [SEP], truncated to seq_len, padded.

    Returns {"input_ids": (N, seq_len) long, "attention_mask": (N, seq_len) bool}."""
    if seq_len < 3:
        raise ValueError(f"seq_len must be >= 3 ([CLS] x [SEP]), got {seq_len}")
    special = special or SpecialIds.of(tokenizer)
    rows = []
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(list(texts[start:start + batch_size]), add_special_tokens=False)["input_ids"]
        rows += [[special.cls, *ids[:seq_len - 2], special.sep] for ids in enc]
    return pad_rows(rows, seq_len, special.pad)


def pad_rows(rows: Sequence[Sequence[int]], seq_len: int, pad_id: int) -> dict[str, torch.Tensor]:
    """Token lists (each <= seq_len) -> {"input_ids": (N, seq_len) long, "attention_mask": bool}."""
    ids = torch.full((len(rows), seq_len), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), seq_len), dtype=torch.bool)
    for i, r in enumerate(rows):
        if len(r) > seq_len:
            raise ValueError(f"row {i} has {len(r)} tokens > seq_len {seq_len}")
        ids[i, :len(r)] = torch.as_tensor(r, dtype=torch.long)
        mask[i, :len(r)] = True
    return {"input_ids": ids, "attention_mask": mask}


def mask_tokens(input_ids: torch.Tensor, attention_mask: torch.Tensor, rate: float, special: SpecialIds,
                generator: torch.Generator | None = None,
                replacement_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's 80/10/10 masking at ``rate``. input_ids, attention_mask (B, S) -> (masked ids, labels),
    labels = original id at selected tokens, -100 elsewhere. Special and padding tokens are never
    selected."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"masking rate must be in [0, 1], got {rate}")
    replacement_ids = special.replacement_ids() if replacement_ids is None else replacement_ids
    candidates = attention_mask.bool() & ~torch.isin(input_ids, torch.tensor(special.special))
    u = torch.rand(input_ids.shape, generator=generator)
    selected = candidates & (u < rate)
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, -100))
    action = torch.rand(input_ids.shape, generator=generator)   # < 0.8 mask, < 0.9 random, else keep
    random_tok = replacement_ids[torch.randint(len(replacement_ids), input_ids.shape, generator=generator)]
    out = torch.where(selected & (action < 0.8), torch.full_like(input_ids, special.mask), input_ids)
    out = torch.where(selected & (action >= 0.8) & (action < 0.9), random_tok, out)
    return out, labels


def mask_generator(seed: int, rank: int, draw: int) -> torch.Generator:
    """The generator of one batch's masks: seeded by (seed, rank, draw index), so draws replay on resume."""
    return torch.Generator().manual_seed((seed * 1_000_003 + rank) * 1_000_033 + draw)


def fixed_rate_batches(data: dict[str, torch.Tensor], rate: float, special: SpecialIds, batch_size: int,
                       seed: int = 1234) -> list[dict[str, torch.Tensor]]:
    """Evaluation batches masked once at a fixed rate (15% in both papers), the same masks on
    every call with the same seed, so every checkpoint is scored on identical inputs."""
    g = torch.Generator().manual_seed(seed)
    out = []
    n = len(data["input_ids"])
    for start in range(0, n, batch_size):
        ids, mask = data["input_ids"][start:start + batch_size], data["attention_mask"][start:start + batch_size]
        masked, labels = mask_tokens(ids, mask, rate, special, g)
        out.append({"input_ids": masked, "attention_mask": mask, "labels": labels})
    return out


def padding_fraction(batches: Iterable[dict[str, torch.Tensor]]) -> float:
    """Share of padding positions over a set of batches."""
    real = total = 0
    for b in batches:
        real += int(b["attention_mask"].sum())
        total += b["attention_mask"].numel()
    return 1.0 - real / max(total, 1)
