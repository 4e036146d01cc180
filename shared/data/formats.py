"""Streaming readers and writers for the file formats real corpora come in.

- JSON Lines (`.jsonl`, `.json` with one object per line, optionally `.gz`): one record per line.
- Parquet (`.parquet`): read in record batches through pyarrow, so memory stays bounded.
- Plain text (`.txt`, `.text`, `.md`, optionally `.gz`): one document per file, or one per blank-line
  separated paragraph block with `text_split="paragraph"`.

`iter_documents(path)` walks a file or a folder (sorted, recursive) and yields document strings, which
is what `shared.data.packing.pack_documents` consumes at full scale.
"""
from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
TEXT_SUFFIXES = (".txt", ".text", ".md", ".rst")
PARQUET_SUFFIXES = (".parquet",)


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def _base_suffix(path: Path) -> str:
    """The format suffix, looking through a trailing `.gz`."""
    return Path(path.stem).suffix if path.suffix == ".gz" else path.suffix


def file_format(path: str | Path) -> str:
    """'jsonl' | 'parquet' | 'text' for a path, else ValueError naming the known suffixes."""
    suffix = _base_suffix(Path(path)).lower()
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix in TEXT_SUFFIXES:
        return "text"
    raise ValueError(f"unknown data file type {str(path)!r}: expected one of "
                     f"{JSONL_SUFFIXES + PARQUET_SUFFIXES + TEXT_SUFFIXES} (optionally .gz, not parquet)")


def read_jsonl(path: str | Path, max_records: int | None = None) -> Iterator[dict[str, Any]]:
    """Yield the JSON objects of a JSON Lines file (blank lines skipped)."""
    path = Path(path)
    with _open_text(path) as f:
        n = 0
        for lineno, line in enumerate(f, 1):
            if max_records is not None and n >= max_records:
                return
            line = line.strip()
            if not line:
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
            n += 1


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> int:
    """Write records as JSON Lines (gzip if the name ends in .gz); returns the number written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open(path, "wt", encoding="utf-8") if path.suffix == ".gz" else open(path, "w", encoding="utf-8")
    n = 0
    with opener as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
            n += 1
    return n


def read_parquet(path: str | Path, columns: list[str] | None = None,
                 batch_size: int = 1024) -> Iterator[dict[str, Any]]:
    """Yield the rows of a Parquet file as dicts, one record batch in memory at a time."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(str(path))
    for batch in pf.iter_batches(batch_size=batch_size, columns=columns):
        yield from batch.to_pylist()


def write_parquet(path: str | Path, records: list[dict[str, Any]]) -> None:
    """Write a list of flat dicts as a Parquet file (used by tests and small exports)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(records), str(path))


def read_text_file(path: str | Path, text_split: str = "file") -> Iterator[str]:
    """Yield a text file's documents: the whole file, or its blank-line separated paragraphs."""
    if text_split not in ("file", "paragraph"):
        raise ValueError(f"text_split must be 'file' or 'paragraph', got {text_split!r}")
    with _open_text(Path(path)) as f:
        text = f.read()
    if text_split == "file":
        if text.strip():
            yield text
        return
    for block in text.split("\n\n"):
        if block.strip():
            yield block.strip("\n")


def list_data_files(path: str | Path) -> list[Path]:
    """A file itself, or every file with a known suffix under a folder (sorted, recursive)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"data path {str(path)!r} does not exist")
    files = []
    for p in sorted(path.rglob("*")):
        if not p.is_file() or p.name.startswith("."):
            continue
        try:
            file_format(p)
        except ValueError:
            continue
        files.append(p)
    if not files:
        raise FileNotFoundError(f"no .jsonl/.parquet/.txt files under {str(path)!r}")
    return files


def iter_documents(path: str | Path, text_field: str = "text", text_split: str = "file",
                   max_docs: int | None = None) -> Iterator[str]:
    """Yield document strings from a file or folder of jsonl / parquet / text files.

    jsonl and parquet records must have `text_field` (a KeyError names the fields a record has).
    """
    n = 0
    for f in list_data_files(path):
        fmt = file_format(f)
        if fmt == "text":
            docs: Iterable[str] = read_text_file(f, text_split)
        else:
            records = read_jsonl(f) if fmt == "jsonl" else read_parquet(f, columns=[text_field])
            docs = (_field(r, text_field, f) for r in records)
        for doc in docs:
            if max_docs is not None and n >= max_docs:
                return
            if doc:
                yield doc
                n += 1


def _field(record: dict[str, Any], name: str, path: Path) -> str:
    try:
        return record[name]
    except KeyError:
        raise KeyError(f"{path}: record has no field {name!r}; fields are {sorted(record)}") from None
