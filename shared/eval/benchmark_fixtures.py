"""Small files in the public row formats of the benchmarks ``shared.eval.benchmarks`` reads, for smoke runs
and tests (the reading and scoring code is the same as at full scale; the questions are generated).

    write_fixtures(folder, ["hellaswag", "mmlu_anatomy", "gsm8k"], rows=8, seed=0)

Each task gets every split its harness task names, as ``<folder>/<task folder>/<split>.jsonl``, with the
columns of the dataset the harness loads (Rowan/hellaswag, allenai/ai2_arc, allenai/winogrande, baber/piqa,
openai/gsm8k, openlifescienceai/medmcqa, GBaker/MedQA-USMLE-4-options-hf, bigbio/pubmed_qa, cais/mmlu; for the
Gauntlet's tasks, shared.eval.gauntlet: aps/super_glue copa and boolq, lighteval/siqa, tau/commonsense_qa,
allenai/openbookqa, EleutherAI/lambada_openai, lighteval/winograd_wsc, mandarjoshi/trivia_qa, hails/bigbench,
hails/agieval-*, rajpurkar/squad, stanfordnlp/coqa, and llm-foundry's own jsonl rows for Jeopardy, SVAMP and the
simple-arithmetic sets).
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


def _copa(rng, i):
    a, b = rng.randint(2, 40), rng.randint(2, 40)
    right, wrong = f"The result was {a + b}.", f"The result was {a + b + rng.choice([1, 10])}."
    label = rng.randint(0, 1)
    return {"premise": f"Sam added {a} and {b}.", "choice1": wrong if label else right,
            "choice2": right if label else wrong, "question": "effect", "idx": i, "label": label}


def _boolq(rng, i):
    a, b = rng.randint(2, 40), rng.randint(2, 40)
    return {"question": f"is {a} larger than {b}", "passage": f"We compared the numbers {a} and {b}.", "idx": i,
            "label": int(a > b)}


def _siqa(rng, i):
    q, opts, k = _question(rng)
    wrong = [o for j, o in enumerate(opts) if j != k][:2]
    order = [opts[k], *wrong]
    rng.shuffle(order)
    return {"context": f"Sam was asked a sum. {q}", "question": "What did Sam answer?", "answerA": order[0],
            "answerB": order[1], "answerC": order[2], "label": str(order.index(opts[k]) + 1)}


def _commonsense_qa(rng, i):
    q, opts, k = _question(rng)
    opts = [*opts, str(int(opts[k]) + 20)]
    return {"id": f"fixture{i}", "question": q, "question_concept": "addition",
            "choices": {"label": list("ABCDE"), "text": opts}, "answerKey": "ABCDE"[k]}


def _openbookqa(rng, i):
    q, opts, k = _question(rng)
    return {"id": f"fixture-{i}", "question_stem": q, "choices": {"text": opts, "label": list(LETTERS)},
            "answerKey": LETTERS[k]}


def _lambada(rng, i):
    a, b = rng.randint(2, 40), rng.randint(2, 40)
    return {"text": f"Sam added {a} and {b} and wrote down the sum, which was {a + b}"}


def _wsc273(rng, i):
    a = rng.randint(2, 40)
    text = f"Sam gave Ann {a} apples because she was hungry."
    return {"text": text, "pronoun": "she", "pronoun_loc": text.index("she"), "quote": "she was hungry",
            "quote_loc": text.index("she"), "options": ["Sam", "Ann"], "label": 1, "source": "fixture"}


def _triviaqa(rng, i):
    a, b = rng.randint(2, 40), rng.randint(2, 40)
    return {"question": f"What is {a} plus {b}", "question_id": f"fixture_{i}", "question_source": "fixture",
            "entity_pages": {"doc_source": [], "filename": [], "title": [], "wiki_context": []},
            "search_results": {"description": [], "filename": [], "rank": [], "title": [], "url": [],
                               "search_context": []},
            "answer": {"aliases": [str(a + b)], "normalized_aliases": [str(a + b)], "matched_wiki_entity_name": "",
                       "normalized_matched_wiki_entity_name": "", "normalized_value": str(a + b), "type": "Numerical",
                       "value": str(a + b)}}


def _bigbench_generate(kind: str) -> Callable:
    def row(rng, i):
        a, b = rng.randint(2, 40), rng.randint(2, 40)
        if kind == "dyck":
            inputs, target = "Complete the rest of the sequence, making sure that the parentheses are closed " \
                             f"properly. Input: {'( [ ' * (1 + i % 2)}", "] ) " * (1 + i % 2)
        elif kind == "operators":
            inputs, target = f"op is defined as a op b = a + b. {a} op {b} =", str(a + b)
        else:
            inputs, target = f"The sum of {a} and {b} is", str(a + b)
        return {"idx": i, "inputs": inputs, "targets": [target.strip()], "multiple_choice_targets": [],
                "multiple_choice_scores": []}
    return row


def _bigbench_choice(rng, i):
    q, opts, k = _question(rng)
    return {"idx": i, "inputs": f"Q: {q}\nA:", "targets": [opts[k]], "multiple_choice_targets": opts,
            "multiple_choice_scores": [int(j == k) for j in range(len(opts))]}


def _agieval(rng, i):
    q, opts, k = _question(rng)
    choices = [f"({LETTERS[j]}){o}" for j, o in enumerate(opts)]
    return {"query": f"Q: {q} Answer Choices: {' '.join(choices)}\nA: Among A through D, the answer is",
            "choices": choices, "gold": [k]}


def _mmlu(subject: str) -> Callable:
    def row(rng, i):
        q, opts, k = _question(rng)
        return {"question": q, "subject": subject, "choices": opts, "answer": k}
    return row


def _jeopardy(rng, i):
    a, b = rng.randint(2, 40), rng.randint(2, 40)
    category = ("sums", "differences")[i % 2]
    value = a + b if category == "sums" else a - b
    return {"context": f"{category.upper()}: Sam works out {a} {'plus' if category == 'sums' else 'minus'} {b}",
            "continuation": str(value), "category": category}


def _simple_arithmetic(spaces: bool) -> Callable:
    def row(rng, i):
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        if spaces:
            return {"context": f"{a} + {b} =", "continuation": f" {a + b}"}
        return {"context": f"{a}+{b}=", "continuation": str(a + b)}
    return row


def _svamp(rng, i):
    a, b = rng.randint(2, 40), rng.randint(2, 40)
    return {"context": f"Sam has {a} apples and buys {b} more. How many apples does Sam have now?",
            "chain_of_thought": f"( {a}.0 + {b}.0 )", "answer": str(a + b)}


def _squad(rng, i):
    a, b = rng.randint(2, 40), rng.randint(2, 40)
    context = f"Sam had {a} apples. Sam bought {b} more, so Sam had {a + b} apples."
    return {"id": f"fixture_{i}", "title": "Apples", "context": context, "question": "How many apples did Sam have?",
            "answers": {"text": [str(a + b)], "answer_start": [context.rindex(str(a + b))]}}


def _coqa(rng, i):
    a, b = rng.randint(2, 40), rng.randint(2, 40)
    story = f"Sam had {a} apples. Ann gave Sam {b} more apples, so Sam had {a + b} apples."
    answers = [str(a), str(a + b)]
    return {"source": "fixture", "story": story,
            "questions": ["How many apples did Sam have first?", "And after Ann gave him more?"],
            "answers": {"input_text": answers, "answer_start": [story.index(x) for x in answers],
                        "answer_end": [story.index(x) + len(x) for x in answers]}}


ROWS: dict[str, Callable] = {"hellaswag": _hellaswag, "arc_challenge": _arc, "arc_easy": _arc,
                             "winogrande": _winogrande, "piqa": _piqa, "gsm8k": _gsm8k, "medmcqa": _medmcqa,
                             "medqa": _medqa, "pubmedqa": _pubmedqa, "gsm8k_cot": _gsm8k, "copa": _copa,
                             "boolq": _boolq, "siqa": _siqa, "commonsense_qa": _commonsense_qa,
                             "openbookqa": _openbookqa, "lambada_openai": _lambada, "wsc273": _wsc273,
                             "triviaqa": _triviaqa, "bigbench_qa_wikidata": _bigbench_generate("qa"),
                             "bigbench_dyck_languages": _bigbench_generate("dyck"),
                             "bigbench_operators": _bigbench_generate("operators"),
                             "bigbench_strange_stories": _bigbench_choice, "bigbench_strategyqa": _bigbench_choice,
                             "bigbench_elementary_math_qa": _bigbench_choice, "agieval_lsat_ar": _agieval,
                             "agieval_lsat_rc": _agieval, "agieval_lsat_lr": _agieval, "agieval_sat_en": _agieval,
                             "jeopardy": _jeopardy, "simple_arithmetic_withspaces": _simple_arithmetic(True),
                             "simple_arithmetic_nospaces": _simple_arithmetic(False), "svamp": _svamp,
                             "squad": _squad, "coqa": _coqa}


def write_fixtures(folder: str | Path, tasks: Sequence[str], rows: int = 8, shot_rows: int = 12, seed: int = 0) -> Path:
    """Write ``rows`` rows of each evaluation split (``max(rows, shot_rows)`` where it is the task's only split)
    and ``shot_rows`` of each training / few-shot split of each task (our names:
    ``shared.eval.benchmarks.BENCHMARKS``, ``mmlu_<subject>``) under ``folder``; MMLU subjects share
    ``mmlu/<split>.jsonl``, and tasks reading the same folder (gsm8k, gsm8k_cot) share its rows. Returns ``folder``."""
    folder = Path(folder)
    files: dict[Path, list[dict]] = {}
    for name in expand(tasks):
        bench = benchmark(name)
        make = _mmlu(bench.subject) if bench.subject is not None else ROWS[name]
        tm = task_manager()
        config = tm._factory._load_full_config(tm._entry(bench.harness_task), None)
        evaluated = {config.get("test_split"), config.get("validation_split")} - {None}
        splits = list(dict.fromkeys(config[k] for k in SPLIT_KEYS if config.get(k)))
        for split in splits:
            rng = random.Random(f"{seed}/{name}/{split}")
            # a task with only its evaluation split draws its shots from it, so it holds the shots too
            n = (rows if len(splits) > 1 else max(rows, shot_rows)) if split in evaluated else shot_rows
            path = folder / bench.folder / f"{split}.jsonl"
            if bench.subject is None and path in files:       # another task reads the same rows (gsm8k_cot)
                continue
            files.setdefault(path, []).extend(make(rng, i) for i in range(n))
    for path, items in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r) + "\n" for r in items))
    return folder


__all__ = ["ROWS", "write_fixtures"]
