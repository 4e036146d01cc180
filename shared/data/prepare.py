"""Data preparation before launch: tokenize and pack a corpus once, in parallel, resumably.

    python -m shared.data.prepare text --input '/data/c4/en/train/*.json.gz' --tokenizer /data/gpt2 \\
        --seq-len 2048 --out /data/c4_packed2048/train --workers 16 [--text-field text] [--json]

Inputs (``--input`` is a glob or a folder; repeatable): JSON Lines (``.jsonl``, ``.json``, plain or
``.gz``), Parquet, plain text files, and Hugging Face ``datasets`` folders written by
``save_to_disk`` (their ``.arrow`` files, read with pyarrow; ``datasets`` is not needed).

Work is split into units: a byte range of an uncompressed JSON Lines file (``--chunk-mb``, default
64), a Parquet row group, an arrow file, or a whole compressed / text file. ``--workers`` processes
each pack one unit at a time into ``<out>/parts/<unit key>/`` (the ``shared.data.packing`` layout:
windows of seq_len + 1 tokens with document ids, sharded ``.npy``); a unit whose part is complete is
reused when the command runs again, so a killed preparation resumes where it stopped. The last step
writes ``<out>/index.json`` over every part's shards, which ``PackedDataset(<out>)`` reads like any
packed folder (each part drops its trailing partial window: under one window per unit).
``<out>/prepare.json`` records the inputs and settings; running again with other settings is refused.

The last line printed is JSON: ``{"tokens", "documents", "sequences", "units", "reused_units",
"seconds", "tokens_per_s", "out"}``. ``benchmarks/data_prepare.py`` compares the throughput with
Hugging Face ``datasets`` ``.map(batched=True, num_proc=N)`` on the same files and tokenizer.
"""
from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path

from tqdm.auto import tqdm

from shared.data.cache import stable_hash
from shared.data.formats import file_format, list_data_files, read_text_file
from shared.data.packing import FORMAT, INDEX, PackedDataset, pack_documents, tokenizer_fingerprint
from shared.data.tokenizer import load_tokenizer
from shared.utils.io import write_json_atomic

MANIFEST = "prepare.json"
PARTS = "parts"


@dataclass(frozen=True)
class Unit:
    """One piece of work: ``kind`` is "lines" (bytes [start, end) of a JSON Lines file), "file"
    (a whole jsonl.gz / text file), "row_group" (Parquet row group ``start``) or "arrow" (an arrow file)."""
    path: str
    kind: str
    start: int = 0
    end: int = -1
    size: int = 0

    @property
    def key(self) -> str:
        return stable_hash(asdict(self))


def _hf_arrow_files(folder: Path) -> list[Path] | None:
    """The .arrow files of a `datasets` save_to_disk folder (a Dataset or a DatasetDict), else None."""
    if (folder / "state.json").exists():
        return sorted(folder.glob("*.arrow"))
    if (folder / "dataset_dict.json").exists():
        splits = json.loads((folder / "dataset_dict.json").read_text()).get("splits", [])
        return [f for split in splits for f in sorted((folder / split).glob("*.arrow"))]
    return None


def input_files(patterns: list[str]) -> list[tuple[Path, str]]:
    """(path, format) for every file the globs name; format is jsonl / parquet / text / arrow."""
    found: list[tuple[Path, str]] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern, recursive=True)) or ([pattern] if Path(pattern).exists() else [])
        if not matches:
            raise FileNotFoundError(f"--input {pattern!r} matches no file or folder")
        for m in map(Path, matches):
            arrow = _hf_arrow_files(m) if m.is_dir() else None
            if arrow is not None:
                found += [(f, "arrow") for f in arrow]
            elif m.is_dir():
                found += [(f, file_format(f)) for f in list_data_files(m)]
            elif m.suffix == ".arrow":
                found.append((m, "arrow"))
            else:
                found.append((m, file_format(m)))
    seen, unique = set(), []
    for path, fmt in found:
        if path.resolve() not in seen:
            seen.add(path.resolve())
            unique.append((path, fmt))
    return unique


def plan_units(files: list[tuple[Path, str]], chunk_bytes: int) -> list[Unit]:
    """Split the input files into units of work (see Unit), in a fixed order."""
    if chunk_bytes < 1:
        raise ValueError(f"chunk size must be >= 1 byte, got {chunk_bytes}")
    units = []
    for path, fmt in files:
        size = path.stat().st_size
        if fmt == "jsonl" and path.suffix != ".gz":
            units += [Unit(str(path), "lines", s, min(s + chunk_bytes, size), size) for s in range(0, max(size, 1), chunk_bytes)]
        elif fmt == "parquet":
            import pyarrow.parquet as pq
            units += [Unit(str(path), "row_group", g, g + 1, size) for g in range(pq.ParquetFile(path).num_row_groups)]
        elif fmt == "arrow":
            units.append(Unit(str(path), "arrow", size=size))
        else:
            units.append(Unit(str(path), "file", size=size))
    return units


def _lines_in_range(path: str, start: int, end: int) -> Iterator[bytes]:
    """Lines that begin in bytes [start, end) of a file (each line read whole)."""
    with open(path, "rb") as f:
        if start > 0:
            f.seek(start - 1)
            f.readline()                  # the rest of the line that began before `start`
        while f.tell() < end:
            line = f.readline()
            if not line:
                break
            yield line


def _text(record: dict, field: str, where: str) -> str:
    try:
        value = record[field]
    except KeyError:
        raise KeyError(f"{where}: record has no field {field!r}; fields are {sorted(record)}") from None
    return value or ""


def unit_documents(unit: Unit, text_field: str = "text", text_split: str = "file") -> Iterator[str]:
    """The document strings of one unit."""
    if unit.kind == "lines":
        for line in _lines_in_range(unit.path, unit.start, unit.end):
            if line.strip():
                yield _text(json.loads(line), text_field, unit.path)
    elif unit.kind == "row_group":
        import pyarrow.parquet as pq
        table = pq.ParquetFile(unit.path).read_row_group(unit.start, columns=[text_field])
        yield from (t or "" for t in table.column(text_field).to_pylist())
    elif unit.kind == "arrow":
        import pyarrow as pa
        with pa.memory_map(unit.path) as source:
            try:
                reader = pa.ipc.open_stream(source)
            except pa.ArrowInvalid:
                reader = pa.ipc.open_file(source)
            table = reader.read_all()
        if text_field not in table.column_names:
            raise KeyError(f"{unit.path}: no column {text_field!r}; columns are {table.column_names}")
        yield from (t or "" for t in table.column(text_field).to_pylist())
    elif file_format(unit.path) == "jsonl":       # compressed JSON Lines
        with gzip.open(unit.path, "rt", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.strip():
                    yield _text(json.loads(line), text_field, unit.path)
    else:
        yield from read_text_file(unit.path, text_split)


_TOKENIZERS: dict[str, object] = {}


def _worker_init() -> None:
    os.environ["TOKENIZERS_PARALLELISM"] = "false"       # one process per core already
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def pack_unit(unit: Unit, tokenizer_dir: str, seq_len: int, parts_dir: str, text_field: str, text_split: str,
              shard_sequences: int) -> dict:
    """Pack one unit into parts_dir/<key> (skipped when complete); returns its index and whether reused."""
    part = Path(parts_dir) / unit.key
    if (part / INDEX).exists():
        return {"key": unit.key, "reused": True, **json.loads((part / INDEX).read_text())}
    if part.exists():                          # left incomplete by a killed run
        shutil.rmtree(part)
    if tokenizer_dir not in _TOKENIZERS:
        _TOKENIZERS[tokenizer_dir] = load_tokenizer(tokenizer_dir)
    pack_documents(unit_documents(unit, text_field, text_split), _TOKENIZERS[tokenizer_dir], seq_len, part,
                   shard_sequences=shard_sequences, source=asdict(unit), progress=False)
    return {"key": unit.key, "reused": False, **json.loads((part / INDEX).read_text())}


def merge_index(out: Path, parts: list[dict], seq_len: int) -> dict:
    """Write out/index.json over every part's shards (paths relative to out), in unit order."""
    first = parts[0]
    shards = [{**s, "tokens": f"{PARTS}/{p['key']}/{s['tokens']}", "doc_ids": f"{PARTS}/{p['key']}/{s['doc_ids']}"}
              for p in parts for s in p["shards"]]
    index = {"format": FORMAT, "seq_len": seq_len, "row_len": seq_len + 1, "token_dtype": first["token_dtype"],
             "doc_dtype": first["doc_dtype"], "vocab_size": first["vocab_size"], "eos_id": first["eos_id"],
             "pad_id": first["pad_id"], "num_sequences": sum(p["num_sequences"] for p in parts),
             "num_documents": sum(p["num_documents"] for p in parts),
             "num_tokens": sum(p["num_tokens"] for p in parts),
             "dropped_tokens": sum(p["dropped_tokens"] for p in parts), "shards": shards,
             "source": {"parts": len(parts)}}
    write_json_atomic(out / INDEX, index)
    return index


def prepare_text(inputs: list[str], tokenizer_dir: str | Path, seq_len: int, out: str | Path, *, workers: int = 1,
                 text_field: str = "text", text_split: str = "file", chunk_mb: float = 64.0,
                 shard_sequences: int = 8192, progress: bool = True) -> dict:
    """Tokenize and pack every document of ``inputs`` into ``out`` with ``workers`` processes.

    Returns the summary that the CLI prints (tokens, documents, sequences, units, reused_units,
    seconds, tokens_per_s, out). Raises ValueError when ``out`` was prepared with other settings.
    """
    if seq_len < 1 or workers < 1:
        raise ValueError(f"seq_len and workers must be >= 1 (got {seq_len}, {workers})")
    t0 = time.time()
    out, tokenizer_dir = Path(out), Path(tokenizer_dir)
    if not tokenizer_dir.is_dir():
        raise FileNotFoundError(f"--tokenizer {tokenizer_dir} is not a folder (a saved tokenizer: save_pretrained)")
    tokenizer = load_tokenizer(tokenizer_dir)
    units = plan_units(input_files(inputs), int(chunk_mb * 2**20))
    manifest = {"kind": "text", "format": FORMAT, "seq_len": seq_len, "text_field": text_field,
                "text_split": text_split, "tokenizer": tokenizer_fingerprint(tokenizer),
                "units": [asdict(u) for u in units]}
    out.mkdir(parents=True, exist_ok=True)
    if (out / MANIFEST).exists():
        old = json.loads((out / MANIFEST).read_text())
        if old != manifest:
            changed = sorted(k for k in manifest if old.get(k) != manifest[k])
            raise ValueError(f"{out} was prepared with other settings ({', '.join(changed)} differ); "
                             "use another --out, or delete it to start over")
    write_json_atomic(out / MANIFEST, manifest)
    (out / INDEX).unlink(missing_ok=True)        # rewritten once every part is complete
    args = (str(tokenizer_dir), seq_len, str(out / PARTS), text_field, text_split, shard_sequences)
    results: dict[str, dict] = {}
    bar = tqdm(total=len(units), desc=f"prepare {out.name}", unit="unit", disable=not progress)
    if workers == 1:
        for u in units:
            results[u.key] = pack_unit(u, *args)
            bar.update(1)
    else:
        # fork (no re-import of torch / transformers per worker): nothing in this process has started
        # threads or used the tokenizer's thread pool yet; spawn where fork does not exist
        method = "fork" if "fork" in get_all_start_methods() else "spawn"
        with ProcessPoolExecutor(workers, mp_context=get_context(method), initializer=_worker_init) as pool:
            futures = [pool.submit(pack_unit, u, *args) for u in units]
            for fut in futures:
                r = fut.result()
                results[r["key"]] = r
                bar.update(1)
    bar.close()
    index = merge_index(out, [results[u.key] for u in units], seq_len)
    seconds = time.time() - t0
    return {"tokens": index["num_tokens"], "documents": index["num_documents"], "sequences": index["num_sequences"],
            "units": len(units), "reused_units": sum(r["reused"] for r in results.values()),
            "seconds": round(seconds, 3), "tokens_per_s": round(index["num_tokens"] / max(seconds, 1e-9), 1),
            "out": str(out)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m shared.data.prepare", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="kind", required=True)
    text = sub.add_parser("text", help="tokenize and pack text for decoder pretraining")
    text.add_argument("--input", action="append", required=True, help="glob or folder (repeatable)")
    text.add_argument("--tokenizer", required=True, help="a saved tokenizer folder (save_pretrained)")
    text.add_argument("--seq-len", type=int, required=True)
    text.add_argument("--out", required=True)
    text.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    text.add_argument("--text-field", default="text")
    text.add_argument("--text-split", default="file", choices=("file", "paragraph"),
                      help="plain text files: one document per file or per blank-line block")
    text.add_argument("--chunk-mb", type=float, default=64.0, help="bytes of uncompressed JSON Lines per unit")
    text.add_argument("--shard-sequences", type=int, default=8192)
    text.add_argument("--json", action="store_true", help="print only the JSON summary (no progress bar)")
    args = ap.parse_args(argv)
    try:
        summary = prepare_text(args.input, args.tokenizer, args.seq_len, args.out, workers=args.workers,
                               text_field=args.text_field, text_split=args.text_split, chunk_mb=args.chunk_mb,
                               shard_sequences=args.shard_sequences, progress=not args.json)
    except (FileNotFoundError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not args.json:
        print(f"{summary['tokens']:,} tokens, {summary['documents']:,} documents, {summary['sequences']:,} "
              f"sequences of {args.seq_len} in {summary['seconds']:.1f} s ({summary['units']} units, "
              f"{summary['reused_units']} reused) -> {summary['out']}")
    print(json.dumps(summary))
    PackedDataset(args.out)                      # the folder reads back
    return 0


if __name__ == "__main__":
    sys.exit(main())
