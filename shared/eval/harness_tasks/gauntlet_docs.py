"""Row handling and scoring for the Gauntlet tasks lm-evaluation-harness does not ship (the YAMLs beside this
file name these functions with ``!function``; the harness loads this file by path, so it imports nothing of ours).

Scoring follows llm-foundry v0.9.1's metrics for the Gauntlet's task types:
- ``language_modeling`` tasks (Jeopardy, SQuAD, CoQA, simple arithmetic) count an example right when every token of
  the continuation is the model's greedy choice (``InContextLearningLMAccuracy``): the harness's loglikelihood
  ``is_greedy``.
- Jeopardy has categories (``has_categories``): its accuracy is the unweighted mean of the per-category accuracies,
  as the Gauntlet callback averages one label's dataloaders (``category_mean``).
- ``generation_task_with_answers`` (SVAMP): the generation is cut at the first stop string, the text after the last
  chain-of-thought delimiter ("The answer is ") is normalised (lower case, no punctuation or articles, single
  spaces) and is right when it starts with the normalised answer or one of its aliases
  (``InContextLearningGenerationExactMatchAccuracy``).
"""
from __future__ import annotations

import re
import string

COT_DELIMITER = "The answer is "
STOP = ("\n\n", "Question:")
_PUNCTUATION = set(string.punctuation + "\u2018\u2019\u00b4`")


def normalize_answer(text: str) -> str:
    """Lower case, underscores and punctuation to spaces, articles removed, whitespace collapsed (TriviaQA's rule)."""
    text = "".join(" " if ch in _PUNCTUATION else ch for ch in text.lower().replace("_", " "))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split()).strip()


def greedy_results(doc: dict, results: list) -> dict:
    """One loglikelihood request -> {"acc": 1 if every continuation token is the greedy choice else 0}."""
    _, is_greedy = results[0]
    return {"acc": int(bool(is_greedy))}


def greedy_results_by_category(doc: dict, results: list) -> dict:
    """As ``greedy_results``, keeping the row's category for ``category_mean``: {"acc": (category, 0 or 1)}."""
    _, is_greedy = results[0]
    return {"acc": (str(doc.get("category", "")), int(bool(is_greedy)))}


def category_mean(items: list) -> float:
    """The unweighted mean over categories of each category's accuracy; items: [(category, 0 or 1)]."""
    by_category: dict[str, list[int]] = {}
    for category, right in items:
        by_category.setdefault(category, []).append(right)
    return sum(sum(v) / len(v) for v in by_category.values()) / max(len(by_category), 1)


def answer_matches(generation: str, answers: list[str]) -> int:
    """1 if the generation, cut at a stop string and after the last "The answer is ", starts with an answer
    (both normalised), else 0."""
    for stop in STOP:
        generation = generation.split(stop)[0]
    final = normalize_answer(generation.split(COT_DELIMITER)[-1])
    return int(any(final.startswith(normalize_answer(a)) for a in answers))


def svamp_results(doc: dict, results: list) -> dict:
    """One generation -> {"exact_match": 0 or 1} against the row's ``answer`` and ``aliases``."""
    return {"exact_match": answer_matches(results[0], [str(doc["answer"]), *[str(a) for a in doc.get("aliases") or []]])}


def _questions(row: dict) -> list[str]:
    q = row["questions"]
    return list(q["input_text"]) if isinstance(q, dict) else list(q)


def coqa_turns(dataset):
    """CoQA rows (stanfordnlp/coqa: ``story``, ``questions`` (a list, or {"input_text": [...]}) and ``answers``
    {"input_text": [...]}) -> one row per question: ``context`` (the story, every earlier question and answer, and
    this question, in the harness's CoQA layout) and ``continuation`` (this answer)."""
    def explode(batch):
        contexts, continuations = [], []
        for i, story in enumerate(batch["story"]):
            row = {k: batch[k][i] for k in batch}
            questions, answers = _questions(row), list(row["answers"]["input_text"])
            if len(questions) != len(answers):
                raise ValueError(f"a CoQA row has {len(questions)} questions but {len(answers)} answers")
            text = story + "\n\n"
            for q, a in zip(questions, answers):
                contexts.append(f"{text}Q: {q}\n\nA:")
                continuations.append(a)
                text += f"Q: {q}\n\nA: {a}\n\n"
        return {"context": contexts, "continuation": continuations}
    return dataset.map(explode, batched=True, remove_columns=dataset.column_names)


def squad_rows(dataset):
    """SQuAD v1.1 rows (rajpurkar/squad: ``title``, ``context``, ``question``, ``answers`` {"text": [...]}) -> the
    same rows with ``answer``: the first reference answer (the continuation scored)."""
    return dataset.map(lambda row: {"answer": row["answers"]["text"][0]})
