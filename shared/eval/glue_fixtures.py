"""Small GLUE files in the public formats, for smoke runs and tests: the reading, finetuning and scoring
code that full scale runs on the real GLUE (``shared.eval.glue``) runs on these unchanged.

    write_glue_fixtures(folder, ["mnli", "cola", "stsb", "mrpc"], rows=48, formats={"stsb": "parquet"})
    read_glue_tasks(folder, ["mnli", "cola", "stsb", "mrpc"])

Two formats, per task:

- ``"tsv"``: the original GLUE distribution (download_glue_data.py), ``<GLUE dir>/train.tsv`` and
  ``dev.tsv`` (MNLI: ``dev_matched.tsv``, ``dev_mismatched.tsv``) with that release's columns: CoLA
  without a header (source, label, original judgement, sentence), MRPC's ``Quality #1 ID #2 ID
  #1 String #2 String``, STS-B's ten columns ending in ``score``, MNLI's parses, ``label1`` (dev:
  ``label1``..``label5``) and ``gold_label`` as words, QNLI / RTE labels as words.
- ``"parquet"``: the Hugging Face Hub dataset nyu-mll/glue, ``<task>/<split>-00000-of-00001.parquet``
  with its columns (text fields, ``label`` as the class id or STS-B's float32 score, ``idx`` int32)
  and splits (``train``, ``validation``; MNLI ``validation_matched`` / ``validation_mismatched``).

The sentences are generated from a few templates with rule-given labels (word order and agreement
for CoLA, a swapped synonym for MRPC, the share of replaced phrases for STS-B, ...), so a model can
learn them a little; they are for exercising code, not for measuring quality.
"""
from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .glue import GLUE_DIRS, GLUE_TASKS, TSV_SPLITS

FORMATS = ("tsv", "parquet")
FIXTURE_TASKS = tuple(GLUE_TASKS)

SUBJECTS = ("the cat", "a dog", "my sister", "the teacher", "our neighbour", "a farmer", "the pilot", "an old man")
# (third person, base form, a synonym in the third person)
VERBS = (("sees", "see", "watches"), ("likes", "like", "enjoys"), ("helps", "help", "assists"),
         ("calls", "call", "phones"), ("follows", "follow", "trails"), ("finds", "find", "discovers"))
OBJECTS = ("the bird", "a red ball", "the small house", "her brother", "the river", "a new car", "the old bridge")
PLACES = ("in the morning", "near the park", "after school", "at night", "by the sea", "on sunday")
GOOD, BAD = ("wonderful", "moving", "clever", "delightful"), ("dull", "clumsy", "tedious", "awful")
MATCHED_GENRES = ("fiction", "government", "slate", "telephone", "travel")
MISMATCHED_GENRES = ("facetoface", "letters", "nineeleven", "oup", "verbatim")


def _pick(rng: np.random.Generator, options: Sequence[Any], avoid: Any = None) -> Any:
    choices = [o for o in options if o != avoid]
    return choices[int(rng.integers(len(choices)))]


def _clause(rng) -> dict[str, Any]:
    return {"subject": _pick(rng, SUBJECTS), "verb": _pick(rng, VERBS), "object": _pick(rng, OBJECTS),
            "place": _pick(rng, PLACES)}


def _say(c: Mapping[str, Any], verb: str | None = None) -> str:
    return f"{c['subject']} {verb or c['verb'][0]} {c['object']} {c['place']} ."


# ---- one example per task: the Hugging Face fields and the label id (STS-B: the score) ----------


def _cola(rng, label: int, split: str) -> dict[str, Any]:
    c = _clause(rng)
    if label == 1:
        return {"sentence": _say(c)}
    if rng.random() < 0.5:                      # agreement error
        return {"sentence": _say(c, c["verb"][1])}
    words = _say(c).split()[:-1]
    order = rng.permutation(len(words))
    if list(order) == list(range(len(words))):
        order = order[::-1]
    return {"sentence": " ".join(words[i] for i in order) + " ."}


def _sst2(rng, label: int, split: str) -> dict[str, Any]:
    return {"sentence": f"{_pick(rng, SUBJECTS)} thought the film was {_pick(rng, GOOD if label else BAD)} ."}


def _mrpc(rng, label: int, split: str) -> dict[str, Any]:
    c = _clause(rng)
    if label == 1:
        return {"sentence1": _say(c), "sentence2": f"{c['place']} , {c['subject']} {c['verb'][2]} {c['object']} ."}
    other = {**c, "verb": _pick(rng, VERBS, c["verb"]), "object": _pick(rng, OBJECTS, c["object"])}
    return {"sentence1": _say(c), "sentence2": _say(other)}


def _qqp(rng, label: int, split: str) -> dict[str, Any]:
    c = _clause(rng)
    q1 = f"why does {c['subject']} {c['verb'][1]} {c['object']} ?"
    if label == 1:
        return {"question1": q1, "question2": f"what makes {c['subject']} {c['verb'][1]} {c['object']} ?"}
    return {"question1": q1, "question2": f"why does {c['subject']} {c['verb'][1]} {_pick(rng, OBJECTS, c['object'])} ?"}


def _stsb(rng, label: int, split: str) -> dict[str, Any]:
    c = _clause(rng)
    slots = ("subject", "verb", "object", "place")
    replaced = rng.choice(len(slots), size=int(rng.integers(len(slots) + 1)), replace=False)
    pools = {"subject": SUBJECTS, "verb": VERBS, "object": OBJECTS, "place": PLACES}
    other = {**c, **{slots[i]: _pick(rng, pools[slots[i]], c[slots[i]]) for i in replaced}}
    return {"sentence1": _say(c), "sentence2": _say(other), "label": 5.0 * (1 - len(replaced) / len(slots))}


def _mnli(rng, label: int, split: str) -> dict[str, Any]:
    c = _clause(rng)
    hypothesis = (f"someone {c['verb'][0]} {c['object']} ." if label == 0                      # entailment
                  else f"{c['subject']} is waiting for a letter ." if label == 1                # neutral
                  else f"{c['subject']} never {c['verb'][0]} {c['object']} .")                  # contradiction
    return {"premise": _say(c), "hypothesis": hypothesis}


def _qnli(rng, label: int, split: str) -> dict[str, Any]:
    c = _clause(rng)
    question = f"who {c['verb'][0]} {c['object']} {c['place']} ?"
    answer = c if label == 0 else {**c, "object": _pick(rng, OBJECTS, c["object"])}
    return {"question": question, "sentence": _say(answer)}


def _rte(rng, label: int, split: str) -> dict[str, Any]:
    c = _clause(rng)
    hypothesis = c if label == 0 else {**c, "verb": _pick(rng, VERBS, c["verb"])}
    return {"sentence1": f"{_say(c)[:-2]} and then goes home .", "sentence2": _say(hypothesis)}


_EXAMPLES = {"cola": _cola, "sst2": _sst2, "mrpc": _mrpc, "qqp": _qqp, "stsb": _stsb, "mnli": _mnli, "qnli": _qnli,
             "rte": _rte}


def task_splits(task: str) -> tuple[str, ...]:
    """The splits a fixture of ``task`` has (the ones shared.eval.glue reads)."""
    return ("train", "validation_matched", "validation_mismatched") if task == "mnli" else ("train", "validation")


def fixture_rows(task: str, split: str, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` examples of one split in the Hugging Face columns: text fields, ``label``, ``idx``.
    Class labels cycle through every class (balanced); STS-B scores follow the replaced phrases."""
    if task not in _EXAMPLES:
        raise ValueError(f"unknown GLUE task {task!r}; valid: {', '.join(_EXAMPLES)}")
    spec = GLUE_TASKS[task]
    rng = np.random.default_rng([seed, *map(ord, task), *map(ord, split)])
    rows = []
    for i in range(n):
        label = i % spec.num_labels
        example = _EXAMPLES[task](rng, label, split)
        rows.append({**{f: example[f] for f in spec.text_fields},
                     "label": float(example["label"]) if spec.is_regression else label, "idx": i})
    return rows

# ---- writers -------------------------------------------------------------------------------------


def _parse(sentence: str) -> tuple[str, str]:
    """(binary parse, parse) columns of MNLI: a flat bracketing of the words, the shape of the real ones."""
    words = sentence.split()
    return "( " + " ".join(words) + " )", "(ROOT (S " + " ".join(f"(X {w})" for w in words) + "))"


def _tsv_table(task: str, split: str, rows: list[dict[str, Any]]) -> tuple[list[str] | None, list[list[str]]]:
    """(header or None, body) of the original GLUE tsv of one split."""
    names = GLUE_TASKS[task].label_names
    word = (lambda r: names[r["label"]]) if names else (lambda r: str(r["label"]))
    if task == "cola":
        return None, [["fx01", str(r["label"]), "" if r["label"] else "*", r["sentence"]] for r in rows]
    if task == "sst2":
        return ["sentence", "label"], [[r["sentence"], word(r)] for r in rows]
    if task == "mrpc":
        return (["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"],
                [[word(r), str(2 * r["idx"] + 1), str(2 * r["idx"] + 2), r["sentence1"], r["sentence2"]] for r in rows])
    if task == "qqp":
        return (["id", "qid1", "qid2", "question1", "question2", "is_duplicate"],
                [[str(r["idx"]), str(2 * r["idx"] + 1), str(2 * r["idx"] + 2), r["question1"], r["question2"], word(r)]
                 for r in rows])
    if task == "stsb":
        return (["index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2",
                 "score"],
                [[str(r["idx"]), "main-captions", "MSRvid", "2012test", f"{r['idx']:04d}", "none", "none",
                  r["sentence1"], r["sentence2"], f"{r['label']:.3f}"] for r in rows])
    if task == "mnli":
        annotators = 1 if split == "train" else 5
        genres = MISMATCHED_GENRES if split == "validation_mismatched" else MATCHED_GENRES
        header = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
                  "sentence1_parse", "sentence2_parse", "sentence1", "sentence2",
                  *[f"label{k + 1}" for k in range(annotators)], "gold_label"]
        body = []
        for r in rows:
            (bp1, p1), (bp2, p2) = _parse(r["premise"]), _parse(r["hypothesis"])
            body.append([str(r["idx"]), str(1000 + r["idx"]), f"{1000 + r['idx']}e", genres[r["idx"] % len(genres)],
                         bp1, bp2, p1, p2, r["premise"], r["hypothesis"], *[word(r)] * annotators, word(r)])
        return header, body
    fields = GLUE_TASKS[task].text_fields                       # qnli, rte
    return ["index", *fields, "label"], [[str(r["idx"]), *[r[f] for f in fields], word(r)] for r in rows]


def _write_tsv(path: Path, header: list[str] | None, body: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, lineterminator="\n")
        writer.writerows(([header] if header else []) + body)


def _write_hub_parquet(path: Path, task: str, rows: list[dict[str, Any]]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    spec = GLUE_TASKS[task]
    schema = pa.schema([*[(f, pa.string()) for f in spec.text_fields],
                        ("label", pa.float32() if spec.is_regression else pa.int64()), ("idx", pa.int32())])
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), str(path))


def write_glue_fixtures(folder: str | Path, tasks: Sequence[str] = ("mnli", "cola", "stsb", "mrpc"), rows: int = 48,
                        eval_rows: int | None = None, seed: int = 0,
                        formats: str | Mapping[str, str] = "tsv") -> dict[str, list[Path]]:
    """Write ``rows`` training and ``eval_rows`` (default rows // 2) evaluation examples of each task
    under ``folder``, each task in its format (one for all, or task -> "tsv" | "parquet"; default tsv).
    Returns {task: [files written]}. ``folder`` is then a ``glue_dir`` for shared.eval.glue."""
    per_task = {t: formats for t in tasks} if isinstance(formats, str) else {t: formats.get(t, "tsv") for t in tasks}
    bad = {t: f for t, f in per_task.items() if f not in FORMATS}
    if bad:
        raise ValueError(f"unknown fixture format(s) {bad}; valid: {', '.join(FORMATS)}")
    folder = Path(folder)
    written: dict[str, list[Path]] = {}
    for task in tasks:
        for split in task_splits(task):
            examples = fixture_rows(task, split, rows if split == "train" else eval_rows or max(rows // 2, 1), seed)
            if per_task[task] == "tsv":
                path = folder / GLUE_DIRS[task] / f"{TSV_SPLITS[split]}.tsv"
                _write_tsv(path, *_tsv_table(task, split, examples))
            else:
                path = folder / task / f"{split}-00000-of-00001.parquet"
                _write_hub_parquet(path, task, examples)
            written.setdefault(task, []).append(path)
    return written


__all__ = ["FIXTURE_TASKS", "FORMATS", "fixture_rows", "task_splits", "write_glue_fixtures"]
