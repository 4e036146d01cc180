"""Named text streams for decoder pretraining: where the documents come from, the tokenizer, packing.

    stream = StreamSpec.from_dict({"corpora": [{"name": "wordnet", "max_docs": 1500}, {"name": "fortunes"}]})
    docs = stream_documents(stream)                       # list[str], the corpora's documents in order
    tok = load_or_train_tokenizer(TokenizerSpec(vocab_size=2048), {"general": stream})
    folder = pack_stream("general", stream, tok, seq_len=128)   # a packed folder (shared.data.packing)

A stream is one of
- `corpora`: a list of {"name", "max_docs", "seed", **generator kwargs}: named corpora of
  shared.data.corpora (or sources added with `register_source`), their `split` documents concatenated
  in order;
- `path`: a folder of jsonl / parquet / text files (full scale, streamed by
  shared.data.packing.tokenize_data_dir);
and is packed into `packed_dir` (default: a cache folder keyed by everything it depends on).

A tokenizer is a saved folder (`path`), or a byte-level BPE of `vocab_size` trained either on named
`corpora` (shared.data.tokenizer.corpus_tokenizer: up to `max_docs` documents of each, shuffled with
`seed`) or, when `corpora` is empty, on the documents of every `corpora` stream in order. Trained
tokenizers are cached. Nothing here coordinates ranks: callers build on rank 0 and the others wait.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Callable, Mapping

from shared.data.cache import atomic_dir, cache_root, stable_hash
from shared.data.corpora import load_corpus
from shared.data.packing import INDEX, pack_documents, tokenize_data_dir, tokenizer_fingerprint
from shared.data.tokenizer import corpus_tokenizer, load_tokenizer, train_bpe
from shared.utils.config import StrictConfig

SPLITS = ("train", "test")
# name -> fn(split, max_docs=..., seed=..., **kwargs) -> list[str]: sources beyond shared.data.corpora
_SOURCES: dict[str, Callable[..., list[str]]] = {}


def register_source(name: str, documents: Callable[..., list[str]]) -> None:
    """Make `name` usable in a stream's corpora: documents(split, max_docs=None, seed=0, **kwargs)."""
    _SOURCES[name] = documents


@dataclass
class StreamSpec(StrictConfig):
    """One named stream of a pretraining mixture (see the module docstring)."""
    corpora: tuple[dict[str, Any], ...] = ()
    path: str | None = None
    split: str = "train"
    packed_dir: str | None = None
    text_field: str = "text"

    def __post_init__(self) -> None:
        if bool(self.corpora) == bool(self.path):
            raise ValueError("a stream needs exactly one of 'corpora' (named corpora) or 'path' (a folder)")
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")
        for c in self.corpora:
            if "name" not in c:
                raise ValueError(f"every corpora entry needs a 'name', got {sorted(c)}")


@dataclass
class TokenizerSpec(StrictConfig):
    """A saved tokenizer (`path`) or a BPE of `vocab_size` (see the module docstring)."""
    path: str | None = None
    vocab_size: int | None = None
    corpora: tuple[str, ...] = ()
    max_docs: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if (self.path is None) == (self.vocab_size is None):
            raise ValueError("a tokenizer needs exactly one of 'path' (a saved folder) or 'vocab_size' (trained)")


def corpus_documents(entry: Mapping[str, Any], split: str = "train") -> list[str]:
    """The documents of one corpora entry {"name", "max_docs", "seed", **generator kwargs}."""
    kwargs = dict(entry)
    name, max_docs, seed = kwargs.pop("name"), kwargs.pop("max_docs", None), kwargs.pop("seed", 0)
    if name in _SOURCES:
        return _SOURCES[name](split, max_docs=max_docs, seed=seed, **kwargs)
    return load_corpus(name, split, max_docs=max_docs, seed=seed, **kwargs)


def stream_documents(stream: StreamSpec) -> list[str]:
    """Every document of a `corpora` stream, corpus by corpus in order."""
    if not stream.corpora:
        raise ValueError(f"stream {stream.path!r} is a folder: its documents are streamed while packing")
    return [doc for entry in stream.corpora for doc in corpus_documents(entry, stream.split)]


def load_or_train_tokenizer(spec: TokenizerSpec, streams: Mapping[str, StreamSpec], prefix: str = "lm"):
    """The tokenizer of `spec` (PreTrainedTokenizerFast): loaded, or trained once and cached."""
    if spec.path is not None:
        return load_tokenizer(spec.path)
    if spec.corpora:
        return corpus_tokenizer(list(spec.corpora), int(spec.vocab_size), seed=spec.seed, max_docs=spec.max_docs)
    if any(not s.corpora for s in streams.values()):
        raise ValueError("a tokenizer trained on the streams needs every stream given as 'corpora'; for folder "
                         "streams give the tokenizer as {'path': folder}")
    key = stable_hash({"spec": spec.to_dict(), "streams": {n: s.to_dict() for n, s in streams.items()}})
    folder = cache_root() / "tokenizers" / f"{prefix}-{key}"
    if not (folder / "tokenizer.json").exists():
        docs = [doc for s in streams.values() for doc in stream_documents(s)]
        tok = train_bpe(docs, int(spec.vocab_size), show_progress=False)
        with atomic_dir(folder) as tmp:
            tok.save_pretrained(str(tmp))
    return load_tokenizer(folder)


def packed_folder(name: str, stream: StreamSpec, tokenizer, seq_len: int, prefix: str = "lm") -> Path:
    """Where stream `name` packed into seq_len windows lives (its packed_dir, or a keyed cache folder)."""
    if stream.packed_dir:
        return Path(stream.packed_dir)
    key = stable_hash({"stream": stream.to_dict(), "seq_len": seq_len, "tok": tokenizer_fingerprint(tokenizer)})
    return cache_root() / "packed" / f"{prefix}-{name}-{key}"


def pack_stream(name: str, stream: StreamSpec, tokenizer, seq_len: int, prefix: str = "lm") -> Path:
    """Pack stream `name` (unless already packed) and return its folder (open it with PackedDataset)."""
    folder = packed_folder(name, stream, tokenizer, seq_len, prefix)
    if (folder / INDEX).exists():
        return folder
    if stream.path:
        return tokenize_data_dir(stream.path, tokenizer, seq_len, folder, text_field=stream.text_field)
    docs = stream_documents(stream)
    return pack_documents(docs, tokenizer, seq_len, folder, total=len(docs), desc=f"pack {name}",
                          source={"stream": name, "spec": stream.to_dict()})


__all__ = ["SPLITS", "StreamSpec", "TokenizerSpec", "corpus_documents", "load_or_train_tokenizer", "pack_stream",
           "packed_folder", "register_source", "stream_documents"]
