"""Named offline corpora for smoke scale: real code, real prose, and generated exact-answer domains.

    load_corpus("code_stdlib")                 # list[str], train split
    load_corpus("gcide_medical", split="test")
    load_corpus("arithmetic", n_train=2000)    # generated corpora take their generator's arguments

Real corpora are built once (with a progress bar) into `<cache>/corpora/<name>-<key>/{train,test}.jsonl`
and read from there afterwards; each document goes to test when a hash of its id falls in the lowest
`TEST_FRACTION`, so the split is stable whatever else changes. Generated corpora are regenerated in
memory (deterministic in `seed`, well under a second) with their own train/test discipline.

| name             | what                                                            |
|------------------|-----------------------------------------------------------------|
| code_stdlib      | CPython standard library .py files (tests and site-packages out) |
| python_docs      | Python 3.11 documentation, reST sources, one page per document  |
| gcide            | GCIDE dictionary entries (1913 Webster + additions)             |
| gcide_medical    | GCIDE entries labelled (Med.), (Anat.), (Physiol.), (Surg.) ... |
| gcide_general    | GCIDE entries without a medical label                           |
| wordnet          | WordNet 3.0 entries (senses, glosses, examples)                 |
| fortunes         | fortune cookies (quotes, jokes, poems)                          |
| debian_reference | the Debian Reference book, one section per document             |
| arithmetic       | GSM8K-shaped word problems with worked solutions                |
| facts            | made-up fact base documents + MMLU-shaped questions answered    |
| functions        | HumanEval-shaped Python functions (prompt + solution)           |
"""
from __future__ import annotations

import json
import sys
import sysconfig
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from shared.data import debian_text
from shared.data.cache import atomic_dir, cache_root, stable_hash
from shared.data.debian_text import TextDoc
from shared.data.formats import read_jsonl
from shared.data.generated import arithmetic, facts, functions

TEST_FRACTION = 0.05
_BUILD_VERSION = 1              # bump when a reader's output changes, to rebuild caches


def python_stdlib(max_files: int | None = None, include_tests: bool = False) -> list[TextDoc]:
    """The running Python's standard library sources, one document per .py file (sorted by path)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"site-packages", "dist-packages", "__pycache__"}
    test_dirs = {"test", "tests", "idle_test"}
    docs = []
    for p in sorted(root.rglob("*.py")):
        parts = set(p.relative_to(root).parts[:-1])
        if parts & skip or (not include_tests and (parts & test_dirs or p.name.startswith("test_"))):
            continue
        text = p.read_text(encoding="utf-8", errors="replace")
        if text.strip():
            docs.append(TextDoc(id=f"stdlib/{p.relative_to(root).as_posix()}", text=text))
        if max_files is not None and len(docs) >= max_files:
            break
    return docs


def _gcide_docs() -> list[TextDoc]:
    return [TextDoc(id=f"gcide/{i}/{e.headword}", text=e.text, meta={"labels": list(e.labels)})
            for i, e in enumerate(debian_text.gcide_entries())]


@dataclass(frozen=True)
class _Real:
    build: Callable[[], list[TextDoc]]
    key: tuple                                    # what the built files depend on
    base: str | None = None                       # a view over another corpus's files ...
    keep: Callable[[dict], bool] | None = None    # ... keeping the records this accepts


def _is_medical(record: dict) -> bool:
    return any(label in debian_text.MEDICAL_LABELS for label in record.get("labels", ()))


REAL: dict[str, _Real] = {
    "code_stdlib": _Real(python_stdlib, key=("stdlib", sys.version_info[:3])),
    "python_docs": _Real(debian_text.python_docs, key=("python3.11-doc",)),
    "gcide": _Real(_gcide_docs, key=("dict-gcide",)),
    "gcide_medical": _Real(_gcide_docs, key=("dict-gcide",), base="gcide", keep=_is_medical),
    "gcide_general": _Real(_gcide_docs, key=("dict-gcide",), base="gcide",
                           keep=lambda r: not _is_medical(r)),
    "wordnet": _Real(debian_text.wordnet_entries, key=("dict-wn",)),
    "fortunes": _Real(debian_text.fortunes, key=("fortunes",)),
    "debian_reference": _Real(debian_text.debian_reference, key=("debian-reference-en",)),
}
GENERATED = ("arithmetic", "facts", "functions")
SPLITS = ("train", "test")


def corpus_names() -> list[str]:
    return list(REAL) + list(GENERATED)


def is_test_id(doc_id: str, test_fraction: float = TEST_FRACTION) -> bool:
    """Whether a real-corpus document is held out: a stable hash of its id, not its position."""
    return zlib.crc32(doc_id.encode("utf-8")) / 2**32 < test_fraction


def build_corpus(name: str, force: bool = False) -> Path:
    """Build a real corpus's cached train/test jsonl files (once) and return their folder."""
    if name not in REAL:
        raise ValueError(f"{name!r} is not a cached real corpus; choose from {sorted(REAL)}")
    spec = REAL[name]
    name = spec.base or name
    folder = cache_root() / "corpora" / f"{name}-{stable_hash([spec.key, _BUILD_VERSION, TEST_FRACTION], 10)}"
    if folder.exists() and not force:
        return folder
    docs = spec.build()
    with atomic_dir(folder) as tmp:
        counts = {s: 0 for s in SPLITS}
        with open(tmp / "train.jsonl", "w", encoding="utf-8") as ftr, \
                open(tmp / "test.jsonl", "w", encoding="utf-8") as fte:
            for d in tqdm(docs, desc=f"corpus {name}", unit="doc", mininterval=1.0):
                split = "test" if is_test_id(d.id) else "train"
                (fte if split == "test" else ftr).write(
                    json.dumps({"id": d.id, "text": d.text, **d.meta}, ensure_ascii=False) + "\n")
                counts[split] += 1
        (tmp / "info.json").write_text(json.dumps({"name": name, "key": list(map(str, spec.key)),
                                                   "documents": counts}, indent=1))
    return folder


def load_records(name: str, split: str = "train") -> list[dict]:
    """A real corpus's records `{"id", "text", ...meta}` (e.g. gcide's "labels"), building if needed."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    folder = build_corpus(name)
    keep = REAL[name].keep
    return [r for r in read_jsonl(folder / f"{split}.jsonl") if keep is None or keep(r)]


def _generated(name: str, split: str, seed: int, kwargs: dict) -> list[str]:
    if name == "arithmetic":
        train, test = arithmetic.arithmetic_splits(kwargs.pop("n_train", 5000), kwargs.pop("n_test", 500),
                                                   seed, **kwargs)
        return [arithmetic.to_text(r) for r in (train if split == "train" else test)]
    if name == "facts":
        s = facts.fact_splits(seed=seed, **kwargs)
        return s.train_texts() if split == "train" else s.test_texts()
    train, test = functions.function_splits(kwargs.pop("n_train", 3000), kwargs.pop("n_test", 300), seed,
                                            **kwargs)
    return [functions.to_text(r) for r in (train if split == "train" else test)]


def load_corpus(name: str, split: str = "train", max_docs: int | None = None, seed: int = 0,
                **generator_kwargs) -> list[str]:
    """Documents (strings) of a named corpus's split.

    max_docs: keep a seeded random subset of this many (in corpus order).
    seed: for generated corpora, the generation seed; for all, the subset seed.
    generator_kwargs: passed to the generated corpus's split function (e.g. n_train, max_number,
        n_entities, n_paraphrases); rejected for real corpora.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if name in REAL:
        if generator_kwargs:
            raise ValueError(f"{name!r} is a real corpus: unexpected arguments {sorted(generator_kwargs)}")
        docs = [r["text"] for r in load_records(name, split)]
    elif name in GENERATED:
        docs = _generated(name, split, seed, dict(generator_kwargs))
    else:
        raise ValueError(f"unknown corpus {name!r}; choose from {corpus_names()}")
    if max_docs is not None and max_docs < len(docs):
        keep = np.sort(np.random.default_rng([seed, zlib.crc32(name.encode())]).choice(
            len(docs), size=max_docs, replace=False))
        docs = [docs[i] for i in keep]
    return docs


def corpus_summary(name: str, split: str = "train", **kwargs) -> dict:
    """Documents and megabytes (UTF-8) of a corpus split."""
    docs = load_corpus(name, split, **kwargs)
    return {"name": name, "split": split, "documents": len(docs),
            "megabytes": sum(len(d.encode("utf-8")) for d in docs) / 1e6}
