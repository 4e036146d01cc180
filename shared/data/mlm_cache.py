"""On-disk token cache for MLM pretraining at full scale (C4-sized corpora do not fit in memory).

    prepare_mlm_cache("data/c4/train", tokenizer, seq_len=128, out="data/c4_mlm128/train")   # once
    data = load_mlm_cache("data/c4_mlm128/train")    # {"input_ids": ShardedRows, "attention_mask": ...}
    MLMBatches(data, ...)                             # rows gathered lazily from memory-mapped shards

Layout: ``index.json`` and shards ``ids_00000.npy`` (n, seq_len) uint16/uint32, one sample per
document exactly as ``shared.data.mlm.encode_for_mlm`` builds it ([CLS] tokens [SEP], padded), and
``lengths_00000.npy`` (n,) int32. Preparation streams documents (``shared.data.formats``), so memory
stays within one shard.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from shared.data.formats import iter_documents
from shared.data.mlm import SpecialIds, encode_for_mlm
from shared.data.tokenizer import token_dtype

INDEX = "index.json"


def prepare_mlm_cache(source: str | Path, tokenizer, seq_len: int, out: str | Path, *, text_field: str = "text",
                      max_docs: int | None = None, shard_rows: int = 1_000_000, chunk: int = 10_000) -> Path:
    """Tokenize every document under ``source`` into shards under ``out`` (skipped if done)."""
    out = Path(out)
    if (out / INDEX).exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    special = SpecialIds.of(tokenizer)
    dtype = token_dtype(len(tokenizer))
    shards, pending, total = [], [], 0

    def flush(rows: list[np.ndarray]) -> None:
        ids = np.concatenate([r[0] for r in rows])
        lengths = np.concatenate([r[1] for r in rows])
        k = len(shards)
        np.save(out / f"ids_{k:05d}.npy", ids.astype(dtype))
        np.save(out / f"lengths_{k:05d}.npy", lengths.astype(np.int32))
        shards.append({"ids": f"ids_{k:05d}.npy", "lengths": f"lengths_{k:05d}.npy", "rows": int(len(ids))})

    docs: list[str] = []
    buffered = 0
    for doc in iter_documents(source, text_field=text_field, max_docs=max_docs):
        docs.append(doc)
        if len(docs) == chunk:
            enc = encode_for_mlm(docs, tokenizer, seq_len, special)
            pending.append((enc["input_ids"].numpy(), enc["attention_mask"].sum(1).numpy()))
            buffered += len(docs)
            total += len(docs)
            docs = []
            if buffered >= shard_rows:
                flush(pending)
                pending, buffered = [], 0
    if docs:
        enc = encode_for_mlm(docs, tokenizer, seq_len, special)
        pending.append((enc["input_ids"].numpy(), enc["attention_mask"].sum(1).numpy()))
        total += len(docs)
    if pending:
        flush(pending)
    (out / INDEX).write_text(json.dumps({"seq_len": seq_len, "rows": total, "shards": shards,
                                         "pad_id": special.pad}, indent=1))
    return out


class ShardedRows:
    """Rows of memory-mapped shards seen as one (N, ...) array: ``len()`` and ``rows[idx]`` for a
    1-d LongTensor idx (what ``shared.train.ResumableBatches`` needs), returning a torch tensor."""

    def __init__(self, arrays: list[np.ndarray], dtype: torch.dtype):
        self.arrays, self.dtype = arrays, dtype
        self.offsets = np.cumsum([0] + [len(a) for a in arrays])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, idx: torch.Tensor) -> torch.Tensor:
        idx = np.asarray(idx, dtype=np.int64)
        shard = np.searchsorted(self.offsets, idx, side="right") - 1
        rows = [self.arrays[s][i - self.offsets[s]] for s, i in zip(shard, idx)]
        return torch.from_numpy(np.stack(rows).astype(np.int64)).to(self.dtype)


class _MaskFromLengths:
    """attention_mask rows computed from stored lengths: (n, seq_len) bool."""

    def __init__(self, lengths: ShardedRows, seq_len: int):
        self.lengths, self.seq_len = lengths, seq_len

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, idx: torch.Tensor) -> torch.Tensor:
        return torch.arange(self.seq_len)[None, :] < self.lengths[idx][:, None]


def load_mlm_cache(folder: str | Path) -> dict:
    """{"input_ids": rows (N, S) long, "attention_mask": rows (N, S) bool}, memory-mapped."""
    folder = Path(folder)
    index = json.loads((folder / INDEX).read_text())
    ids = [np.load(folder / s["ids"], mmap_mode="r") for s in index["shards"]]
    lengths = [np.load(folder / s["lengths"], mmap_mode="r") for s in index["shards"]]
    return {"input_ids": ShardedRows(ids, torch.long),
            "attention_mask": _MaskFromLengths(ShardedRows(lengths, torch.long), index["seq_len"])}
