"""Pack tokenized documents into fixed-length training sequences that remember document boundaries.

Layout. Documents are tokenized, each followed by `<|endoftext|>` (EOS), and concatenated into one
stream. Sequence i is the window `stream[i*T : i*T + T + 1]` (T = seq_len): T + 1 tokens, so that
inputs = window[:-1] and targets = window[1:]; consecutive windows share one token, so every token of
the stream is a target exactly once. The trailing partial window is dropped.

Per window we store `doc_ids` (T + 1,): which document each token belongs to, counted from 0 at the
window's first token (a document cut by a window edge continues as id 0 in the next window). The EOS
belongs to the document it ends. A model builds its document (block-diagonal causal) mask from
`doc_ids` of the inputs.

Loss mask (our choice): position t is trained only if its input token and its target token belong to
the same document, `loss_mask[t] = doc[t] == doc[t+1]`. So the first token of a document is never
predicted from the previous document's EOS (which a document-masked model could not see anyway),
while predicting EOS at the end of a document is trained, which is what teaches a model to stop.

On disk (a folder): `index.json` and shards `tokens_00000.npy` (n, T+1) uint16/uint32 and
`doc_ids_00000.npy` (n, T+1) uint16 (int32 for T >= 65535), read back with `np.load(mmap_mode="r")`.
`pack_documents` streams: memory stays within one shard plus one tokenizer batch.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from shared.data.cache import atomic_dir, cache_root, stable_hash
from shared.data.corpora import load_corpus
from shared.data.formats import iter_documents
from shared.data.tokenizer import token_dtype
from shared.utils.io import write_json_atomic

INDEX = "index.json"
FORMAT = "packed-v1"


def loss_mask_from_doc_ids(doc_ids: torch.Tensor) -> torch.Tensor:
    """(..., T+1) document ids of a window -> (..., T) bool: target in the same document as input."""
    return doc_ids[..., :-1] == doc_ids[..., 1:]


class _ShardWriter:
    """Cuts a token stream into overlapping windows of T+1 and writes them in shards."""

    def __init__(self, out: Path, seq_len: int, vocab_size: int, shard_sequences: int):
        self.out, self.T, self.shard_sequences = out, seq_len, shard_sequences
        self.tok_dtype = token_dtype(vocab_size)
        self.doc_dtype = np.dtype(np.uint16) if seq_len + 1 <= np.iinfo(np.uint16).max else np.dtype(np.int32)
        self.tokens: list[np.ndarray] = []       # pending stream pieces
        self.docs: list[np.ndarray] = []         # global document index of each pending token
        self.pending = 0
        self.shards: list[dict] = []
        self.num_sequences = 0

    def add(self, ids: Sequence[int], doc_index: int) -> None:
        self.tokens.append(np.asarray(ids, dtype=np.int32))
        self.docs.append(np.full(len(ids), doc_index, dtype=np.int64))
        self.pending += len(ids)
        while self.pending >= self.shard_sequences * self.T + 1:
            self._flush(self.shard_sequences)

    def _flush(self, n_rows: int) -> None:
        tok = np.concatenate(self.tokens)
        doc = np.concatenate(self.docs)
        T = self.T
        rows = np.arange(n_rows)[:, None] * T + np.arange(T + 1)[None, :]       # (n, T+1) window indices
        win_tok, win_doc = tok[rows], doc[rows]
        win_doc = win_doc - win_doc[:, :1]                                      # restart at 0 per window
        k = len(self.shards)
        names = {"tokens": f"tokens_{k:05d}.npy", "doc_ids": f"doc_ids_{k:05d}.npy"}
        np.save(self.out / names["tokens"], win_tok.astype(self.tok_dtype))
        np.save(self.out / names["doc_ids"], win_doc.astype(self.doc_dtype))
        self.shards.append({**names, "num_sequences": n_rows})
        self.num_sequences += n_rows
        rest = n_rows * T                                                       # last token is shared
        self.tokens, self.docs = [tok[rest:]], [doc[rest:]]
        self.pending = len(self.tokens[0])

    def finish(self) -> int:
        """Write the remaining full windows; return the number of stream tokens dropped."""
        n = (self.pending - 1) // self.T if self.pending > 0 else 0
        if n > 0:
            self._flush(n)
        return max(self.pending - 1, 0)


def _encoder(tokenizer):
    """A copy of the fast tokenizer's backend that encodes special-token strings found inside a
    document as plain text, so only the separators we insert are EOS."""
    backend = tokenizer.backend_tokenizer
    from tokenizers import Tokenizer
    backend = Tokenizer.from_str(backend.to_str())
    backend.encode_special_tokens = True
    return backend


def pack_documents(docs: Iterable[str], tokenizer, seq_len: int, out_dir: str | Path,
                   shard_sequences: int = 8192, batch_size: int = 512, total: int | None = None,
                   desc: str = "pack", source: dict | None = None, progress: bool = True) -> Path:
    """Tokenize `docs` (strings, streamed) with a PreTrainedTokenizerFast and write packed shards.

    Writes into a temporary folder renamed to `out_dir` when complete; returns `out_dir`.
    `total` (number of docs, if known) only feeds the progress bar (off with progress=False).
    """
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no eos_token; use shared.data.tokenizer.train_bpe")
    out_dir = Path(out_dir)
    encoder, eos = _encoder(tokenizer), tokenizer.eos_token_id
    n_docs = n_tokens = 0
    with atomic_dir(out_dir) as tmp:
        writer = _ShardWriter(tmp, seq_len, len(tokenizer), shard_sequences)
        batch: list[str] = []

        def encode(texts: list[str]) -> None:
            nonlocal n_docs, n_tokens
            for enc in encoder.encode_batch(texts, add_special_tokens=False):
                ids = enc.ids + [eos]
                writer.add(ids, n_docs)
                n_docs += 1
                n_tokens += len(ids)

        for doc in tqdm(docs, total=total, desc=desc, unit="doc", mininterval=1.0, disable=not progress):
            if not doc:
                continue
            batch.append(doc)
            if len(batch) >= batch_size:
                encode(batch)
                batch = []
        if batch:
            encode(batch)
        dropped = writer.finish()
        index = {"format": FORMAT, "seq_len": seq_len, "row_len": seq_len + 1,
                 "token_dtype": writer.tok_dtype.name, "doc_dtype": writer.doc_dtype.name,
                 "vocab_size": len(tokenizer), "eos_id": eos, "pad_id": tokenizer.pad_token_id,
                 "num_sequences": writer.num_sequences, "num_documents": n_docs, "num_tokens": n_tokens,
                 "dropped_tokens": dropped, "shards": writer.shards, "source": source or {}}
        write_json_atomic(tmp / INDEX, index)
    return out_dir


def tokenize_data_dir(data_dir: str | Path, tokenizer, seq_len: int, out_dir: str | Path,
                      text_field: str = "text", text_split: str = "file", max_docs: int | None = None,
                      shard_sequences: int = 8192) -> Path:
    """Full-scale path: pack every jsonl / parquet / text file under `data_dir` into `out_dir`.

    Skips the work when `out_dir` already holds a complete index (delete it to rebuild). Encoding is
    the cost (~1 MB/s per core); set TOKENIZERS_PARALLELISM=true to let `tokenizers` use every core.
    """
    out_dir = Path(out_dir)
    if (out_dir / INDEX).exists():
        return out_dir
    docs = iter_documents(data_dir, text_field=text_field, text_split=text_split, max_docs=max_docs)
    return pack_documents(docs, tokenizer, seq_len, out_dir, shard_sequences=shard_sequences,
                          desc=f"pack {Path(data_dir).name}",
                          source={"data_dir": str(data_dir), "text_field": text_field})


def tokenizer_fingerprint(tokenizer) -> str:
    return stable_hash(tokenizer.backend_tokenizer.to_str())


def packed_corpus(name: str, tokenizer, seq_len: int, split: str = "train", max_docs: int | None = None,
                  seed: int = 0, **generator_kwargs) -> PackedDataset:
    """A named corpus (shared.data.corpora) packed with `tokenizer`, cached by all the arguments."""
    key = stable_hash({"name": name, "split": split, "max_docs": max_docs, "seed": seed,
                       "kwargs": generator_kwargs, "tokenizer": tokenizer_fingerprint(tokenizer),
                       "seq_len": seq_len, "format": FORMAT})
    folder = cache_root() / "packed" / f"{name}-{split}-{key}"
    if not (folder / INDEX).exists():
        docs = load_corpus(name, split, max_docs=max_docs, seed=seed, **generator_kwargs)
        pack_documents(docs, tokenizer, seq_len, folder, total=len(docs), desc=f"pack {name}/{split}",
                       source={"corpus": name, "split": split, "max_docs": max_docs, "seed": seed})
    return PackedDataset(folder)


class PackedDataset(torch.utils.data.Dataset):
    """Sequences of a packed folder. Item i is a dict of tensors, each of shape (T,):

    input_ids (int64), targets (int64), doc_ids (int64, from 0 within the sequence),
    loss_mask (bool: target belongs to the input's document).
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        index_path = self.folder / INDEX
        if not index_path.exists():
            raise FileNotFoundError(f"{index_path} not found: not a packed folder (see pack_documents)")
        self.index = json.loads(index_path.read_text())
        if self.index.get("format") != FORMAT:
            raise ValueError(f"{index_path}: format {self.index.get('format')!r}, expected {FORMAT!r}")
        self.seq_len = int(self.index["seq_len"])
        self.eos_id = int(self.index["eos_id"])
        counts = [s["num_sequences"] for s in self.index["shards"]]
        self._starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._tokens: list[np.ndarray | None] = [None] * len(counts)
        self._docs: list[np.ndarray | None] = [None] * len(counts)

    def __len__(self) -> int:
        return int(self._starts[-1])

    @property
    def num_tokens(self) -> int:
        """Target tokens available: sequences x seq_len."""
        return len(self) * self.seq_len

    def _shard(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self._tokens[k] is None:
            s = self.index["shards"][k]
            self._tokens[k] = np.load(self.folder / s["tokens"], mmap_mode="r")
            self._docs[k] = np.load(self.folder / s["doc_ids"], mmap_mode="r")
        return self._tokens[k], self._docs[k]

    def windows(self, indices: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw windows: tokens and doc ids, each (len(indices), T+1) int64, in the order given."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise IndexError(f"sequence index out of range [0, {n})")
        tok = np.empty((idx.size, self.seq_len + 1), dtype=np.int64)
        doc = np.empty_like(tok)
        shard_of = np.searchsorted(self._starts, idx, side="right") - 1
        for k in np.unique(shard_of):
            sel = np.nonzero(shard_of == k)[0]
            local = idx[sel] - self._starts[k]
            order = np.argsort(local, kind="stable")               # sorted reads from the memmap
            t, d = self._shard(int(k))
            tok[sel[order]] = t[local[order]]
            doc[sel[order]] = d[local[order]]
        return tok, doc

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> dict[str, torch.Tensor]:
        """A batch dict of (B, T) tensors: input_ids, targets, doc_ids (int64) and loss_mask (bool)."""
        tok, doc = self.windows(indices)
        tok_t, doc_t = torch.from_numpy(tok), torch.from_numpy(doc)
        return {"input_ids": tok_t[:, :-1].contiguous(), "targets": tok_t[:, 1:].contiguous(),
                "doc_ids": doc_t[:, :-1].contiguous(), "loss_mask": loss_mask_from_doc_ids(doc_t)}

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.get_batch([int(i)]).items()}

    def batches(self, batch_size: int, max_batches: int | None = None) -> Iterator[dict[str, torch.Tensor]]:
        """Sequential batches over the whole dataset (the last may be smaller), e.g. for evaluation."""
        for b, start in enumerate(range(0, len(self), batch_size)):
            if max_batches is not None and b >= max_batches:
                return
            yield self.get_batch(np.arange(start, min(start + batch_size, len(self))))
