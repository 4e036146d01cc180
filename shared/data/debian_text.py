"""Readers for English text that Debian packages ship, found installed or extracted by
ci/fetch_offline_data.sh.

Package layouts (Debian 12, checked by extracting the .debs):
- python3.11-doc: `usr/share/doc/python3.11/html/_sources/**/*.rst.txt`, 497 reST sources (12 MB).
- dict-gcide: `usr/share/dictd/gcide.{index,dict.dz}`, a dictd database. The .dz is gzip-readable; the
  index has one line per headword, `headword<TAB>offset<TAB>length`, numbers in dictd base64. Entries
  look like `Abasia \\A*ba"si*a\\ (pron), n. [etymology] (Med.) definition ... [1913 Webster]`: domain
  labels are parenthesised abbreviations such as (Med.), (Anat.), (Physiol.), (Anat. & Med.).
- dict-wn: `usr/share/dictd/wn.{index,dict.dz}`, WordNet 3.0 in the same dictd format.
- fortunes: `usr/share/games/fortunes/<category>`, fortunes separated by lines holding only `%`.
- debian-reference-en: `usr/share/debian-reference/debian-reference.en.txt.gz`, the whole book as text.

Every reader takes an optional `root` (a folder that holds `usr/share/...`, used by the tests on small
files they write) and otherwise looks in `/` and then in the extracted-package cache; if neither has the
files it raises MissingDataError naming the script to run.
"""
from __future__ import annotations

import gzip
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from shared.data.cache import debs_root

FETCH_SCRIPT = "bash ci/fetch_offline_data.sh"

# package -> the path (relative to a root) that its readers need; keep in sync with the script's PROBE.
PACKAGES: dict[str, str] = {
    "python3.11-doc": "usr/share/doc/python3.11/html/_sources",
    "dict-gcide": "usr/share/dictd/gcide.dict.dz",
    "dict-wn": "usr/share/dictd/wn.dict.dz",
    "fortunes": "usr/share/games/fortunes",
    "debian-reference-en": "usr/share/debian-reference/debian-reference.en.txt.gz",
}

# GCIDE domain labels taken as biomedical (counts in gcide 0.48: Med. 2606, Anat. 2103, Physiol. 912,
# Surg. 238, Pharm. 39, Biochem. 22, Veter./Vet. 22, Microbiol. 8, Pathol. 6, Bacteriol. 4).
MEDICAL_LABELS = frozenset({"Med.", "Anat.", "Physiol.", "Surg.", "Pharm.", "Biochem.", "Pathol.",
                            "Microbiol.", "Bacteriol.", "Veter.", "Vet."})


class MissingDataError(FileNotFoundError):
    """A Debian package's files are neither installed nor extracted into the cache."""


@dataclass(frozen=True)
class TextDoc:
    """One document of a real-text corpus: a stable id, the text, and reader-specific metadata."""
    id: str
    text: str
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class GcideEntry:
    """One GCIDE dictionary entry: headword, cleaned text, and its domain labels, e.g. ('Anat.', 'Zool.')."""
    headword: str
    text: str
    labels: tuple[str, ...]

    @property
    def is_medical(self) -> bool:
        return any(label in MEDICAL_LABELS for label in self.labels)


def package_path(package: str, root: str | Path | None = None) -> Path:
    """Where `package`'s data is: under `root` if given, else installed (/), else in the debs cache."""
    if package not in PACKAGES:
        raise ValueError(f"unknown package {package!r}; known: {sorted(PACKAGES)}")
    rel = PACKAGES[package]
    candidates = [Path(root) / rel] if root is not None else [Path("/") / rel, debs_root() / package / rel]
    for c in candidates:
        if c.exists():
            return c
    raise MissingDataError(
        f"Debian package {package!r} not found (looked for {', '.join(map(str, candidates))}). "
        f"Run `{FETCH_SCRIPT}` (or `apt-get install {package}`) to fetch it.")


# ----------------------------------------------------------------------------------------- dictd format
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_VALUE = {c: i for i, c in enumerate(_B64)}


def dictd_b64(s: str) -> int:
    """Decode a dictd index number (base64 digits, most significant first)."""
    v = 0
    for c in s:
        v = v * 64 + _B64_VALUE[c]
    return v


def read_dictd(dict_dz: Path, max_records: int | None = None) -> Iterator[tuple[str, str]]:
    """Yield (headword, record text) for each distinct record of a dictd database, in file order.

    Several headwords can point at one record (variants); each record is yielded once, under the first
    headword that names it. The `00-database-*` metadata records are skipped.
    """
    index = Path(str(dict_dz).removesuffix(".dict.dz") + ".index")
    with gzip.open(dict_dz, "rb") as f:
        data = f.read()
    spans: dict[tuple[int, int], str] = {}
    with open(index, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 3 or parts[0].startswith("00-"):
                continue
            span = (dictd_b64(parts[1]), dictd_b64(parts[2]))
            spans.setdefault(span, parts[0])
    for n, (off, length) in enumerate(sorted(spans)):
        if max_records is not None and n >= max_records:
            return
        yield spans[(off, length)], data[off:off + length].decode("utf-8", errors="replace")


# ------------------------------------------------------------------------------------------------ GCIDE
_LABEL_GROUP = re.compile(r"\(((?:[A-Z][a-z]+\.)(?:\s*(?:&|,|and|or)?\s*[A-Z][a-z]+\.)*)\)")
_LABEL = re.compile(r"[A-Z][a-z]+\.")
_PRON = re.compile(r"\\[^\\\n]*\\")                       # \A*ba"si*a\
_PRON_PAREN = re.compile(r"^\s*\([^()]*\)")               # (pronunciation) right after it
_CHAR_NAMES = {"ae": "ae", "AE": "AE", "oe": "oe", "OE": "OE", "imac": "i", "aum": "a", "eth": "th",
               "thorn": "th", "th": "th", "ng": "ng", "deg": " degrees", "sect": "section", "yogh": "y"}
_CHAR_CODE = re.compile(r"\[([`'\"=~^.,*\-]?)([A-Za-z]{1,2})([\^=]?)\]")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_BRACES = re.compile(r"\{([^{}]*)\}")


def _gcide_char(m: re.Match) -> str:
    body = m.group(0)[1:-1]
    if body in _CHAR_NAMES:
        return _CHAR_NAMES[body]
    if m.group(1) or m.group(3) or len(m.group(2)) == 1:
        return m.group(2)
    return m.group(0)            # [Obs.]-like tags and others: left for the bracket removal


def clean_gcide(record: str) -> str:
    """Plain prose from a GCIDE record: drop pronunciations, etymologies and source tags."""
    lines = record.strip("\n").split("\n")
    head, rest = lines[0], lines[1:]
    head = _PRON.sub("", head)
    word, _, tail = head.partition(" ")
    tail = _PRON_PAREN.sub("", tail)
    text = "\n".join([(word + " " + tail.strip()).strip()] + rest)
    text = _PRON.sub("", text)
    for name, plain in _CHAR_NAMES.items():
        text = text.replace(f"[{name}]", plain)
    text = _CHAR_CODE.sub(_gcide_char, text)
    prev = None
    while prev != text:                       # innermost brackets first: etymologies nest char codes
        prev, text = text, _BRACKETS.sub("", text)
    text = _BRACES.sub(lambda m: re.sub(r"[*\"`]", "", m.group(1)), text)
    # unwrap the 60-column lines: one line per blank-line separated paragraph
    blocks = [" ".join(ln.strip() for ln in b.split("\n") if ln.strip()) for b in re.split(r"\n\s*\n", text)]
    text = "\n\n".join(re.sub(r"[ \t]+", " ", b) for b in blocks if b)
    text = re.sub(r" ([,.;:])", r"\1", text)
    return text


def gcide_labels(record: str) -> tuple[str, ...]:
    """Domain labels of a record, in order of first appearance: '(Anat. & Zool.)' -> ('Anat.', 'Zool.')."""
    seen: dict[str, None] = {}
    for group in _LABEL_GROUP.finditer(record):
        for label in _LABEL.findall(group.group(1)):
            seen.setdefault(label, None)
    return tuple(seen)


def gcide_entries(root: str | Path | None = None, max_entries: int | None = None,
                  medical_only: bool = False) -> list[GcideEntry]:
    """GCIDE entries with their domain labels (126k records; `medical_only`: labels in MEDICAL_LABELS)."""
    entries = []
    for headword, record in read_dictd(package_path("dict-gcide", root)):
        entry = GcideEntry(headword=headword, text=clean_gcide(record), labels=gcide_labels(record))
        if medical_only and not entry.is_medical:
            continue
        if len(entry.text) > len(headword) + 4:
            entries.append(entry)
        if max_entries is not None and len(entries) >= max_entries:
            break
    return entries


# ---------------------------------------------------------------------------------------------- WordNet
def wordnet_entries(root: str | Path | None = None, max_entries: int | None = None) -> list[TextDoc]:
    """WordNet 3.0 entries (headword, senses with glosses and examples), cross-reference braces removed."""
    docs = []
    for headword, record in read_dictd(package_path("dict-wn", root), max_records=max_entries):
        text = _BRACES.sub(lambda m: m.group(1), record).strip("\n")
        text = "\n".join(re.sub(r"[ \t]+", " ", ln).rstrip() for ln in text.split("\n"))
        docs.append(TextDoc(id=f"wn/{headword}", text=text))
    return docs


# ------------------------------------------------------------------------------------------ Python docs
def python_docs(root: str | Path | None = None, max_files: int | None = None) -> list[TextDoc]:
    """The Python 3.11 documentation's reST sources, one document per page (sorted by path)."""
    base = package_path("python3.11-doc", root)
    files = sorted(base.rglob("*.rst.txt"))[:max_files]
    docs = []
    for p in files:
        text = p.read_text(encoding="utf-8", errors="replace").strip()
        if text:
            docs.append(TextDoc(id=f"pydoc/{p.relative_to(base).as_posix()}", text=text))
    return docs


# --------------------------------------------------------------------------------------------- fortunes
def fortunes(root: str | Path | None = None, max_docs: int | None = None,
             exclude: tuple[str, ...] = ("ascii-art",)) -> list[TextDoc]:
    """Fortune cookies, one document each, with their category (file name) in meta['category']."""
    base = package_path("fortunes", root)
    docs: list[TextDoc] = []
    for p in sorted(base.iterdir()):
        if p.suffix in (".dat", ".u8") or p.is_dir() or p.is_symlink() or p.name in exclude:
            continue
        raw = p.read_bytes().decode("utf-8", errors="replace")
        for i, text in enumerate(re.split(r"(?m)^%\s*$", raw)):
            text = text.strip("\n")
            if text.strip():
                docs.append(TextDoc(id=f"fortunes/{p.name}/{i}", text=text, meta={"category": p.name}))
            if max_docs is not None and len(docs) >= max_docs:
                return docs
    return docs


# ------------------------------------------------------------------------------------ Debian reference
# headings use no-break spaces: "Chapter\xa01.\xa0GNU/Linux tutorials", "1.1.\xa0Console basics"
_SECTION = re.compile(r"^(?:Chapter[ \xa0]\d+\.|Appendix[ \xa0][A-Z]\.|\d+\.\d+(?:\.\d+)*\.)[ \xa0].+$", re.M)


def debian_reference(root: str | Path | None = None, max_docs: int | None = None,
                     min_chars: int = 200) -> list[TextDoc]:
    """The Debian Reference split into sections (headings at column 0); table-of-contents lines and
    sections under `min_chars` are dropped."""
    with gzip.open(package_path("debian-reference-en", root), "rt", encoding="utf-8", errors="replace") as f:
        book = f.read()
    starts = [m.start() for m in _SECTION.finditer(book)] + [len(book)]
    docs = []
    for a, b in zip(starts, starts[1:]):
        title, _, body = book[a:b].replace("\xa0", " ").partition("\n")
        text = (title + "\n" + textwrap.dedent(body)).strip()
        if len(text) < min_chars:
            continue
        docs.append(TextDoc(id=f"debref/{title}", text=text))
        if max_docs is not None and len(docs) >= max_docs:
            break
    return docs
