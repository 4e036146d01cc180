"""File-format readers and the named corpora registry."""
import gzip
import json

import pytest

from shared.data import corpora, formats


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REPLICATIONS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_jsonl_parquet_text_readers(tmp_path):
    records = [{"text": f"doc {i}", "n": i} for i in range(5)]
    assert formats.write_jsonl(tmp_path / "a.jsonl", records) == 5
    formats.write_jsonl(tmp_path / "b.jsonl.gz", records[:2])
    formats.write_parquet(tmp_path / "c.parquet", records[:3])
    (tmp_path / "d.txt").write_text("para one\nline two\n\npara two\n")
    (tmp_path / "ignored.csv").write_text("x")
    assert list(formats.read_jsonl(tmp_path / "a.jsonl")) == records
    assert list(formats.read_jsonl(tmp_path / "b.jsonl.gz")) == records[:2]
    assert list(formats.read_parquet(tmp_path / "c.parquet", batch_size=2)) == records[:3]
    assert [p.name for p in formats.list_data_files(tmp_path)] == ["a.jsonl", "b.jsonl.gz", "c.parquet", "d.txt"]
    docs = list(formats.iter_documents(tmp_path))
    assert docs == [r["text"] for r in records] + ["doc 0", "doc 1", "doc 0", "doc 1", "doc 2",
                                                   "para one\nline two\n\npara two\n"]
    assert list(formats.iter_documents(tmp_path / "d.txt", text_split="paragraph")) == ["para one\nline two",
                                                                                        "para two"]
    assert len(list(formats.iter_documents(tmp_path, max_docs=7))) == 7


def test_reader_errors(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{not json}\n')
    with pytest.raises(ValueError, match="bad.jsonl:2"):
        list(formats.read_jsonl(tmp_path / "bad.jsonl"))
    formats.write_jsonl(tmp_path / "sub/x.jsonl", [{"body": "a"}])
    with pytest.raises(KeyError, match="body"):
        list(formats.iter_documents(tmp_path / "sub"))
    with pytest.raises(ValueError, match="unknown data file type"):
        formats.file_format("x.csv")
    with pytest.raises(FileNotFoundError):
        formats.list_data_files(tmp_path / "nope")


def test_python_stdlib_is_real_code():
    docs = corpora.python_stdlib(max_files=40)
    assert len(docs) == 40
    assert all(d.id.endswith(".py") and "/test" not in d.id and "site-packages" not in d.id for d in docs)
    assert sum("def " in d.text or "import " in d.text for d in docs) > 30
    with_tests = corpora.python_stdlib(include_tests=True)
    assert any("/test/" in d.id for d in with_tests)


def test_generated_corpora_splits_and_subsets(tmp_cache):
    train = corpora.load_corpus("arithmetic", n_train=200, n_test=50)
    test = corpora.load_corpus("arithmetic", "test", n_train=200, n_test=50)
    assert len(train) == 200 and len(test) == 50 and not set(train) & set(test)
    sub = corpora.load_corpus("functions", max_docs=30, n_train=100, n_test=10, seed=1)
    assert len(sub) == 30 and sub == corpora.load_corpus("functions", max_docs=30, n_train=100, n_test=10, seed=1)
    facts_train = corpora.load_corpus("facts", n_entities=8)
    assert any(t.endswith(("Answer: A", "Answer: B", "Answer: C", "Answer: D")) for t in facts_train)
    with pytest.raises(ValueError, match="choose from"):
        corpora.load_corpus("nope")
    with pytest.raises(ValueError, match="split"):
        corpora.load_corpus("arithmetic", "validation")
    with pytest.raises(ValueError, match="real corpus"):
        corpora.load_corpus("fortunes", n_train=3)
    assert not list(tmp_cache.glob("corpora/*"))          # generated corpora are not written to disk


def test_real_corpus_build_is_cached_and_split_by_id(tmp_cache, monkeypatch):
    calls = []

    def fake_build():
        calls.append(1)
        return [corpora.TextDoc(id=f"doc/{i}", text=f"text {i}", meta={"labels": ["Med."] if i % 2 else []})
                for i in range(400)]

    monkeypatch.setitem(corpora.REAL, "fake", corpora._Real(fake_build, key=("fake",)))
    monkeypatch.setitem(corpora.REAL, "fake_med", corpora._Real(fake_build, key=("fake",), base="fake",
                                                                keep=corpora._is_medical))
    train, test = corpora.load_corpus("fake"), corpora.load_corpus("fake", "test")
    assert len(train) + len(test) == 400 and not set(train) & set(test)
    assert 0 < len(test) < 50                                   # ~5% held out
    assert {f"text {i}" for i in range(400) if corpora.is_test_id(f"doc/{i}")} == set(test)
    assert len(corpora.load_corpus("fake_med")) + len(corpora.load_corpus("fake_med", "test")) == 200
    assert calls == [1]                                         # built once, then read from the cache
    info = json.loads(next(tmp_cache.glob("corpora/fake-*/info.json")).read_text())
    assert info["documents"]["train"] == len(train)
    assert corpora.load_corpus("fake", max_docs=10, seed=3) == corpora.load_corpus("fake", max_docs=10, seed=3)
    assert corpora.load_corpus("fake", max_docs=10, seed=3) != corpora.load_corpus("fake", max_docs=10, seed=4)


def test_gzip_text(tmp_path):
    with gzip.open(tmp_path / "x.txt.gz", "wt") as f:
        f.write("compressed text")
    assert list(formats.iter_documents(tmp_path)) == ["compressed text"]
