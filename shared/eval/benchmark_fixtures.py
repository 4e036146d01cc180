"""Small files in the public row formats of the benchmarks ``shared.eval.benchmarks`` reads, for smoke runs
and tests (the reading and scoring code is the same as at full scale; the questions are generated).

    write_fixtures(folder, ["hellaswag", "mmlu_anatomy", "gsm8k"], rows=8, seed=0)

Each task gets every split its harness task names, as ``<folder>/<task folder>/<split>.jsonl``, with the
columns of the dataset the harness loads (Rowan/hellaswag, allenai/ai2_arc, allenai/winogrande, baber/piqa,
openai/gsm8k, openlifescienceai/medmcqa, GBaker/MedQA-USMLE-4-options-hf, bigbio/pubmed_qa, cais/mmlu).
The questions are simple arithmetic comparisons, so a model that has learnt numbers can score above chance.
"""
from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path

from .benchmarks import SPLIT_KEYS, benchmark, expand, task_manager

LETTERS = "ABCD"


def _question(rng: random.Random) -> tuple[str, list[str], int]:
    """(question, 4 numeric options, index of the right one)."""
    a, b = rng.randint(2, 40), rng.randint(2, 40)
    right = a + b
    options = sorted({right, right + 1, right - 1, right + 10})
    while len(options) < 4:
        options.append(options[-1] + 3)
    rng.shuffle(options)
    return f"What is {a} plus {b}?", [str(o) for o in options], options.index(right)


def _hellaswag(rng, i):
    q, opts, k = _question(rng)
    return {"ind": i, "activity_label": "Arithmetic", "ctx_a": q, "ctx_b": "the answer is", "ctx": f"{q} the answer is",
            "endings": opts, "source_id": f"fixture~{i}", "split": "val", "split_type": "indomain", "label": str(k)}


def _arc(rng, i):
    q, opts, k = _question(rng)
    return {"id": f"fixture_{i}", "question": q, "choices": {"text": opts, "label": list(LETTERS)}, "answerKey": LETTERS[k]}


def _winogrande(rng, i):
    a, b = rng.randint(2, 9), rng.randint(11, 40)
    first_big = rng.random() < 0.5
    big, small = (str(b), str(a))
    return {"sentence": f"Between {a} and {b}, the larger number is _ because it has two digits.",
            "option1": big if first_big else small, "option2": small if first_big else big,
            "answer": "1" if first_big else "2"}


def _piqa(rng, i):
    q, opts, k = _question(rng)
    wrong = opts[(k + 1) % 4]
    right_first = rng.random() < 0.5
    return {"goal": q, "sol1": opts[k] if right_first else wrong, "sol2": wrong if right_first else opts[k],
            "label": 0 if right_first else 1}


def _gsm8k(rng, i):
    a, b = rng.randint(2, 40), rng.randint(2, 40)
    return {"question": f"Sam has {a} apples and buys {b} more. How many apples does Sam have?",
            "answer": f"Sam has {a} + {b} = <<{a}+{b}={a + b}>>{a + b} apples.\n#### {a + b}"}


def _medmcqa(rng, i):
    q, opts, k = _question(rng)
    return {"id": f"fixture-{i}", "question": q, "opa": opts[0], "opb": opts[1], "opc": opts[2], "opd": opts[3],
            "cop": k, "choice_type": "single", "exp": "", "subject_name": "Arithmetic", "topic_name": ""}


def _medqa(rng, i):
    q, opts, k = _question(rng)
    return {"id": f"fixture-{i}", "sent1": q, "sent2": "", "ending0": opts[0], "ending1": opts[1],
            "ending2": opts[2], "ending3": opts[3], "label": k}


def _pubmedqa(rng, i):
    a, b = rng.randint(2, 40), rng.randint(2, 40)
    decision = "yes" if a > b else ("no" if a < b else "maybe")
    return {"QUESTION": f"Is {a} larger than {b}?", "CONTEXTS": [f"We compared the numbers {a} and {b}."],
            "LABELS": ["BACKGROUND"], "MESHES": [], "YEAR": "2020", "reasoning_required_pred": "yes",
            "reasoning_free_pred": "yes", "final_decision": decision, "LONG_ANSWER": "", "QUESTION_ID": str(i)}


def _mmlu(subject: str) -> Callable:
    def row(rng, i):
        q, opts, k = _question(rng)
        return {"question": q, "subject": subject, "choices": opts, "answer": k}
    return row


ROWS: dict[str, Callable] = {"hellaswag": _hellaswag, "arc_challenge": _arc, "arc_easy": _arc,
                             "winogrande": _winogrande, "piqa": _piqa, "gsm8k": _gsm8k, "medmcqa": _medmcqa,
                             "medqa": _medqa, "pubmedqa": _pubmedqa}


def write_fixtures(folder: str | Path, tasks: Sequence[str], rows: int = 8, shot_rows: int = 12, seed: int = 0) -> Path:
    """Write ``rows`` rows of each evaluation split and ``shot_rows`` of each training / few-shot split of each
    task (our names: ``shared.eval.benchmarks.BENCHMARKS``, ``mmlu_<subject>``) under ``folder``; MMLU subjects
    share ``mmlu/<split>.jsonl``. Returns ``folder``."""
    folder = Path(folder)
    files: dict[Path, list[dict]] = {}
    for name in expand(tasks):
        bench = benchmark(name)
        make = _mmlu(bench.subject) if bench.subject is not None else ROWS[name]
        tm = task_manager()
        config = tm._factory._load_full_config(tm._entry(bench.harness_task), None)
        evaluated = {config.get("test_split"), config.get("validation_split")} - {None}
        for split in dict.fromkeys(config[k] for k in SPLIT_KEYS if config.get(k)):
            rng = random.Random(f"{seed}/{name}/{split}")
            n = rows if split in evaluated else shot_rows
            files.setdefault(folder / bench.folder / f"{split}.jsonl", []).extend(make(rng, i) for i in range(n))
    for path, items in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in items))
    return folder


__all__ = ["ROWS", "write_fixtures"]
