"""Tokenizing a corpus before launch: `shared.data.prepare` against Hugging Face `datasets`
(`load_dataset("json")` + `.map(batched=True, num_proc=N)`) with the same fast tokenizer, on the same
JSON Lines files, side by side in one run.

Both sides start from the JSON Lines files and end with token ids on disk (ours: packed .npy windows;
datasets: its arrow cache). The corpus is the GCIDE dictionary (Debian's dict-gcide; `make data`),
repeated to `--mb` megabytes; the tokenizer a byte-level BPE trained on it (`--vocab`). Both sides
get `--workers` processes of one thread each (TOKENIZERS_PARALLELISM=false, so neither side takes
more cores through the tokenizer's own thread pool). Wall-clock seconds per side, best of
`--rounds`, tokens per second and the ratio are printed.

    pip install 'datasets>=2.19'              # or: pip install -e '.[bench]'
    python benchmarks/data_prepare.py --mb 64 --workers 2
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from shared.data.corpora import load_corpus
from shared.data.prepare import prepare_text
from shared.data.tokenizer import load_tokenizer, train_bpe


def write_corpus(folder: Path, mb: float, files: int) -> tuple[list[Path], int]:
    """`files` JSON Lines files of GCIDE entries, repeated until `mb` megabytes in all."""
    docs = load_corpus("gcide", "train")
    target, written, paths = mb * 2**20 / files, 0, []
    for k in range(files):
        path = folder / f"part_{k:02d}.jsonl"
        size, i = 0, 0
        with open(path, "w") as f:
            while size < target:
                line = json.dumps({"text": docs[(k * 7919 + i) % len(docs)]}) + "\n"
                f.write(line)
                size, i = size + len(line.encode()), i + 1
        paths.append(path)
        written += i
    return paths, written


def run_ours(paths: list[Path], tok_dir: Path, out: Path, workers: int, seq_len: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    summary = prepare_text([str(p) for p in paths], tok_dir, seq_len, out, workers=workers, chunk_mb=16,
                           progress=False)
    return time.perf_counter() - t0, summary["tokens"]


def run_datasets(paths: list[Path], tok_dir: Path, cache: Path, workers: int) -> tuple[float, int]:
    import datasets

    datasets.disable_progress_bars()
    tokenizer = load_tokenizer(tok_dir)
    t0 = time.perf_counter()
    ds = datasets.load_dataset("json", data_files=[str(p) for p in paths], split="train", cache_dir=str(cache))
    ids = ds.map(lambda b: {"input_ids": tokenizer(b["text"], add_special_tokens=False)["input_ids"]},
                 batched=True, num_proc=workers if workers > 1 else None, remove_columns=["text"])
    seconds = time.perf_counter() - t0
    return seconds, sum(len(x) for x in ids["input_ids"]) + len(ids)      # + one EOS per document, as ours


def main() -> None:
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=32.0)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths, n_docs = write_corpus(tmp, args.mb, args.files)
        tok = train_bpe(load_corpus("gcide", "train", max_docs=20000), vocab_size=args.vocab)
        tok.save_pretrained(str(tmp / "tok"))
        ours, theirs = [], []
        for r in range(args.rounds):            # alternate sides; fresh output folders each round
            ours.append(run_ours(paths, tmp / "tok", tmp / f"ours{r}", args.workers, args.seq_len))
            theirs.append(run_datasets(paths, tmp / "tok", tmp / f"hf_cache{r}", args.workers))
        (s_ours, tok_ours), (s_hf, tok_hf) = min(ours), min(theirs)
    print(f"{args.mb:.0f} MB of JSON Lines in {args.files} files, {n_docs:,} documents, BPE vocab {args.vocab}, "
          f"{args.workers} worker(s), best of {args.rounds}")
    print(f"{'':28s} {'seconds':>9s} {'tokens':>13s} {'tokens/s':>12s}")
    print(f"{'shared.data.prepare':28s} {s_ours:9.2f} {tok_ours:13,d} {tok_ours / s_ours:12,.0f}")
    print(f"{'datasets map(num_proc)':28s} {s_hf:9.2f} {tok_hf:13,d} {tok_hf / s_hf:12,.0f}")
    print(f"ours / datasets throughput: {(tok_ours / s_ours) / (tok_hf / s_hf):.2f}x"
          + ("" if tok_ours == tok_hf else f"  (token counts differ: {tok_ours} vs {tok_hf})"))


if __name__ == "__main__":
    main()
