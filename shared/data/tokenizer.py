"""Byte-level BPE tokenizers trained locally with the `tokenizers` library, saved so that
`transformers.AutoTokenizer.from_pretrained(folder)` loads them offline.

    tok = train_bpe(texts, vocab_size=4096)                        # any iterable of strings
    tok = corpus_tokenizer(["python_docs", "gcide"], vocab_size=8192, seed=0)   # cached by a hash
    tok.eos_token_id, tok.pad_token_id                              # <|endoftext|>, <|pad|>

The recipe is GPT-2's (and BioMedLM's tokenize/train_bpe.py): byte-level pre-tokenisation without a
prefix space, the 256 byte symbols as initial alphabet (so nothing is ever unknown), BPE merges learned
with `min_frequency`. Special tokens take the first ids, in the order given. `<|endoftext|>` is both
EOS and BOS; encoder papers add `<|mask|>` (and `<|cls|>`, `<|sep|>`) via `special_tokens`.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from shared.data.cache import atomic_dir, cache_root, stable_hash
from shared.data.corpora import load_corpus

if TYPE_CHECKING:                    # transformers is imported when first needed: it takes seconds
    from transformers import PreTrainedTokenizerFast

EOS = "<|endoftext|>"
PAD = "<|pad|>"
MASK = "<|mask|>"
DEFAULT_SPECIAL_TOKENS = (EOS, PAD)
ENCODER_SPECIAL_TOKENS = (EOS, PAD, MASK, "<|cls|>", "<|sep|>")
# special token -> the role transformers gives it
_ROLES = {EOS: ("eos_token", "bos_token"), PAD: ("pad_token",), MASK: ("mask_token",),
          "<|cls|>": ("cls_token",), "<|sep|>": ("sep_token",), "<|unk|>": ("unk_token",)}


def train_bpe(texts: Iterable[str], vocab_size: int, special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS,
              min_frequency: int = 2, show_progress: bool = True) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on `texts`; the vocabulary has at most `vocab_size` entries
    (fewer if the texts run out of merges)."""
    if EOS not in special_tokens:
        raise ValueError(f"special_tokens must include {EOS!r}; got {list(special_tokens)}")
    n_base = 256 + len(special_tokens)
    if vocab_size <= n_base:
        raise ValueError(f"vocab_size must exceed {n_base} (256 bytes + special tokens), got {vocab_size}")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                  special_tokens=list(special_tokens), show_progress=show_progress,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    return wrap_tokenizer(tok, special_tokens)


def wrap_tokenizer(tok: Tokenizer, special_tokens: Sequence[str]) -> PreTrainedTokenizerFast:
    """A transformers tokenizer around a `tokenizers.Tokenizer`, with roles for our special tokens."""
    from transformers import PreTrainedTokenizerFast

    roles = {role: t for t in special_tokens for role in _ROLES.get(t, ())}
    extra = [t for t in special_tokens if t not in _ROLES]
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, clean_up_tokenization_spaces=False,
                                   model_max_length=10**9, **roles)
    if extra:
        fast.add_special_tokens({"additional_special_tokens": extra})
    return fast


def tokenizer_key(corpora: Sequence[str], vocab_size: int, seed: int, max_docs: int | None,
                  special_tokens: Sequence[str], min_frequency: int) -> str:
    return stable_hash({"corpora": list(corpora), "vocab_size": vocab_size, "seed": seed,
                        "max_docs": max_docs, "special": list(special_tokens), "min_frequency": min_frequency,
                        "version": 1})


def corpus_tokenizer(corpora: Sequence[str], vocab_size: int, seed: int = 0, max_docs: int | None = None,
                     special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS, min_frequency: int = 2,
                     ) -> PreTrainedTokenizerFast:
    """A BPE trained on the train splits of named corpora (shared.data.corpora), cached under
    `<cache>/tokenizers/<hash of corpora, vocab_size, seed, max_docs, special tokens>/`.

    max_docs: at most this many documents per corpus (a seeded subset), to bound training time.
    The documents are shuffled with `seed` before training (BPE ties then resolve reproducibly).
    """
    folder = cache_root() / "tokenizers" / tokenizer_key(corpora, vocab_size, seed, max_docs,
                                                         special_tokens, min_frequency)
    if (folder / "tokenizer.json").exists():
        return load_tokenizer(folder)
    texts: list[str] = []
    for name in corpora:
        texts.extend(load_corpus(name, "train", max_docs=max_docs, seed=seed))
    order = np.random.default_rng(seed).permutation(len(texts))
    tok = train_bpe((texts[i] for i in order), vocab_size, special_tokens, min_frequency)
    with atomic_dir(folder) as tmp:
        tok.save_pretrained(str(tmp))
    return load_tokenizer(folder)


def load_tokenizer(folder: str | Path) -> PreTrainedTokenizerFast:
    """Load a saved tokenizer folder (offline; no hub access)."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast.from_pretrained(str(folder), local_files_only=True)


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned dtype that holds every token id."""
    return np.dtype(np.uint16) if vocab_size <= 2**16 else np.dtype(np.uint32)
