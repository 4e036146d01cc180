"""Packing documents into fixed-length windows with document ids and a loss mask."""
import json

import numpy as np
import pytest
import torch

from shared.data import packing
from shared.data.formats import write_jsonl, write_parquet
from shared.data.tokenizer import train_bpe

DOCS = [f"doc {i}: " + "the cat sat on the mat. " * (i % 7) + f"end {i}" for i in range(60)]
DOCS[5] = "a literal <|endoftext|> inside a document"


@pytest.fixture(scope="module")
def tok():
    return train_bpe(DOCS, vocab_size=320, show_progress=False)


def _reference_stream(tok):
    enc = packing._encoder(tok)
    ids, docs = [], []
    for d, text in enumerate(DOCS):
        piece = enc.encode(text, add_special_tokens=False).ids + [tok.eos_token_id]
        ids += piece
        docs += [d] * len(piece)
    return np.array(ids), np.array(docs)


def test_windows_tile_the_stream_with_document_ids(tok, tmp_path):
    T = 16
    folder = packing.pack_documents(DOCS, tok, T, tmp_path / "p", shard_sequences=5)
    ds = packing.PackedDataset(folder)
    ref_ids, ref_docs = _reference_stream(tok)
    assert len(ds) == (len(ref_ids) - 1) // T and len(ds.index["shards"]) == -(-len(ds) // 5)
    assert ds.index["num_tokens"] == len(ref_ids) and ds.index["num_documents"] == len(DOCS)
    assert ds.index["dropped_tokens"] == len(ref_ids) - 1 - len(ds) * T
    tok_w, doc_w = ds.windows(np.arange(len(ds)))
    for i in range(len(ds)):
        span = slice(i * T, i * T + T + 1)
        assert (tok_w[i] == ref_ids[span]).all()                            # window i = stream[iT : iT+T+1]
        assert (doc_w[i] == ref_docs[span] - ref_docs[span][0]).all()       # ids restart per window
    # the only EOS tokens are the separators we inserted (document 5's literal one is text)
    assert (ref_ids == tok.eos_token_id).sum() == len(DOCS)
    assert np.load(folder / "tokens_00000.npy", mmap_mode="r").dtype == np.uint16


def test_item_tensors_and_loss_mask(tok, tmp_path):
    T = 12
    ds = packing.PackedDataset(packing.pack_documents(DOCS, tok, T, tmp_path / "p"))
    b = ds.get_batch([3, 0, 3])
    assert set(b) == {"input_ids", "targets", "doc_ids", "loss_mask"}
    assert all(v.shape == (3, T) for v in b.values())
    assert b["input_ids"].dtype == torch.int64 and b["loss_mask"].dtype == torch.bool
    assert torch.equal(b["input_ids"][0], b["input_ids"][2])
    assert torch.equal(b["input_ids"][:, 1:], b["targets"][:, :-1])
    eos = tok.eos_token_id
    for i in range(len(ds)):
        item = ds[i]
        x, y, d, m = item["input_ids"], item["targets"], item["doc_ids"], item["loss_mask"]
        # masked exactly where the input is a document's EOS (its target opens the next document)
        assert torch.equal(~m, x == eos)
        # predicting EOS at a document's end is trained
        assert bool(m[y == eos].all())
        assert int(d[0]) == 0 and bool((d[1:] - d[:-1] >= 0).all())
        assert torch.equal(d[1:] != d[:-1], x[:-1] == eos)                  # ids step after each EOS


def test_batches_and_index_errors(tok, tmp_path):
    ds = packing.PackedDataset(packing.pack_documents(DOCS, tok, 20, tmp_path / "p", shard_sequences=4))
    seen = torch.cat([b["input_ids"] for b in ds.batches(7)])
    assert seen.shape[0] == len(ds) and torch.equal(seen, ds.get_batch(np.arange(len(ds)))["input_ids"])
    with pytest.raises(IndexError):
        ds.get_batch([len(ds)])
    with pytest.raises(FileNotFoundError, match="not a packed folder"):
        packing.PackedDataset(tmp_path / "missing")


def test_tokenize_data_dir_jsonl_parquet_text(tok, tmp_path):
    data = tmp_path / "data"
    write_jsonl(data / "part0.jsonl", [{"text": d, "id": i} for i, d in enumerate(DOCS[:20])])
    write_parquet(data / "part1.parquet", [{"text": d} for d in DOCS[20:40]])
    for i, d in enumerate(DOCS[40:]):
        (data / "txt").mkdir(exist_ok=True)
        (data / "txt" / f"{i:03d}.txt").write_text(d)
    out = packing.tokenize_data_dir(data, tok, 16, tmp_path / "out")
    index = json.loads((out / "index.json").read_text())
    assert index["num_documents"] == 60
    direct = packing.PackedDataset(packing.pack_documents(DOCS, tok, 16, tmp_path / "direct"))
    from_dir = packing.PackedDataset(out)
    assert len(direct) == len(from_dir)
    assert torch.equal(direct.get_batch(np.arange(len(direct)))["input_ids"],
                       from_dir.get_batch(np.arange(len(from_dir)))["input_ids"])
    assert packing.tokenize_data_dir(data, tok, 16, out) == out             # complete: not rebuilt


def test_packed_corpus_cache(tok, tmp_path, monkeypatch):
    monkeypatch.setenv("REPLICATIONS_CACHE", str(tmp_path))
    a = packing.packed_corpus("arithmetic", tok, 32, n_train=50, n_test=5)
    b = packing.packed_corpus("arithmetic", tok, 32, n_train=50, n_test=5)
    assert a.folder == b.folder and len(a) > 10
    c = packing.packed_corpus("arithmetic", tok, 32, split="test", n_train=50, n_test=5)
    assert c.folder != a.folder and len(c) < len(a)
