"""`python -m shared.data.prepare text`: every document of every input format is packed exactly once,
in parallel or not, a killed preparation resumes, other settings are refused, and the folder reads back."""
import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shared.data.packing import PackedDataset
from shared.data.prepare import input_files, plan_units, prepare_text, unit_documents
from shared.data.tokenizer import train_bpe

REPO = Path(__file__).resolve().parents[1]
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau".split()


def _docs(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 40)))) + f" doc{seed}-{i}" for i in range(n)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A folder with the public formats (jsonl, json.gz, parquet with 3 row groups, a `datasets`
    save_to_disk folder, text files), a saved tokenizer, and every document it holds."""
    root = tmp_path_factory.mktemp("corpus")
    data, docs = root / "data", {}
    data.mkdir()
    docs["a.jsonl"] = _docs(300, 1)
    (data / "a.jsonl").write_text("".join(json.dumps({"text": d, "id": i}) + "\n" for i, d in enumerate(docs["a.jsonl"])))
    docs["b.json.gz"] = _docs(50, 2)
    with gzip.open(data / "b.json.gz", "wt") as f:
        f.writelines(json.dumps({"text": d}) + "\n" for d in docs["b.json.gz"])
    docs["c.parquet"] = _docs(90, 3)
    pq.write_table(pa.table({"text": docs["c.parquet"]}), data / "c.parquet", row_group_size=30)
    hf = root / "hf_saved"
    hf.mkdir()
    docs["hf"] = _docs(40, 4)
    table = pa.table({"text": docs["hf"]})
    with pa.OSFile(str(hf / "data-00000-of-00001.arrow"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    (hf / "state.json").write_text(json.dumps({"_data_files": [{"filename": "data-00000-of-00001.arrow"}]}))
    (hf / "dataset_info.json").write_text("{}")
    docs["t.txt"] = ["a whole text file " + " ".join(WORDS)]
    (data / "t.txt").write_text(docs["t.txt"][0])
    tok = train_bpe([d for ds in docs.values() for d in ds], vocab_size=300)
    tok.save_pretrained(str(root / "tok"))
    return {"root": root, "inputs": [str(data), str(hf)], "tok": root / "tok", "tokenizer": tok,
            "docs": [d for ds in docs.values() for d in ds]}


def _expected_tokens(corpus) -> int:
    tok = corpus["tokenizer"]
    return sum(len(tok(d, add_special_tokens=False)["input_ids"]) + 1 for d in corpus["docs"])


def test_units_cover_every_document_once(corpus):
    units = plan_units(input_files(corpus["inputs"]), chunk_bytes=2000)
    assert {u.kind for u in units} == {"lines", "file", "row_group", "arrow"}
    assert sum(u.kind == "lines" for u in units) > 3 and sum(u.kind == "row_group" for u in units) == 3
    seen = [d for u in units for d in unit_documents(u)]
    assert sorted(seen) == sorted(corpus["docs"])          # byte ranges split at line boundaries


@pytest.mark.slow   # spawns two worker processes
def test_parallel_equals_serial_and_reads_back(corpus, tmp_path):
    serial = prepare_text(corpus["inputs"], corpus["tok"], 32, tmp_path / "one", workers=1, chunk_mb=0.002,
                          progress=False)
    parallel = prepare_text(corpus["inputs"], corpus["tok"], 32, tmp_path / "two", workers=2, chunk_mb=0.002,
                            progress=False)
    assert serial["documents"] == parallel["documents"] == len(corpus["docs"])
    assert serial["tokens"] == parallel["tokens"] == _expected_tokens(corpus)
    a, b = PackedDataset(tmp_path / "one"), PackedDataset(tmp_path / "two")
    assert len(a) == len(b) == serial["sequences"] > 0
    ta, _ = a.windows(np.arange(len(a)))
    tb, _ = b.windows(np.arange(len(b)))
    assert np.array_equal(ta, tb)


def test_a_killed_preparation_resumes_and_other_settings_are_refused(corpus, tmp_path):
    out = tmp_path / "out"
    first = prepare_text(corpus["inputs"], corpus["tok"], 16, out, chunk_mb=0.002, progress=False)
    parts = sorted((out / "parts").iterdir())
    # as if killed: one part never finished (no index) and the final index was not written
    (parts[1] / "index.json").unlink()
    (out / "index.json").unlink()
    again = prepare_text(corpus["inputs"], corpus["tok"], 16, out, chunk_mb=0.002, progress=False)
    assert again["reused_units"] == first["units"] - 1 and again["tokens"] == first["tokens"]
    with pytest.raises(ValueError, match="seq_len"):
        prepare_text(corpus["inputs"], corpus["tok"], 64, out, chunk_mb=0.002, progress=False)


@pytest.mark.slow   # two interpreter starts
def test_cli_prints_json_last_and_explains_bad_input(corpus, tmp_path):
    cmd = [sys.executable, "-m", "shared.data.prepare", "text", "--tokenizer", str(corpus["tok"]), "--seq-len", "16",
           "--workers", "1", "--json"]
    ok = subprocess.run(cmd + ["--input", corpus["inputs"][0], "--out", str(tmp_path / "o")], cwd=REPO,
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    summary = json.loads(ok.stdout.strip().splitlines()[-1])
    assert summary["documents"] == len(corpus["docs"]) - 40 and summary["tokens"] > summary["documents"]
    bad = subprocess.run(cmd + ["--input", str(tmp_path / "nothing*.jsonl"), "--out", str(tmp_path / "p")], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "matches no file" in bad.stderr
