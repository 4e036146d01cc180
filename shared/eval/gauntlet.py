"""The Mosaic Eval Gauntlet v0.3: its categories, tasks and random baselines, scored through lm-evaluation-harness.

    result = evaluate_gauntlet(lm, data_dir)                       # a GauntletResult
    result.average, result.categories, result.tasks, result.not_scored
    python -m shared.eval.gauntlet --model PATH --data-dir D [--categories world_knowledge,...] [--limit N] [--json]

Source (data only, no code): mosaicml/llm-foundry at tag v0.9.1 (commit 1402b7edf0301889b1c100c4a00ddc616ce808f8),
``scripts/eval/yamls/eval_gauntlet_v0.3.yaml`` (categories, each task's shots and random baseline, the
``core_average`` of the five categories) and ``scripts/eval/yamls/tasks_v0.3.yaml`` (each task's type); the
scoring is that of ``llmfoundry/callbacks/eval_gauntlet_callback.py`` with the yaml's settings (``weighting:
EQUAL``, ``subtract_random_baseline``, ``rescale_accuracy``):

- a task's score is its accuracy rescaled by its random baseline b: ``(acc - b) / (1 - b)`` (0 at chance, 1 at
  perfect; below chance is negative);
- a category's score is the mean of its tasks' scores (equal weights);
- the average is the mean of the category scores (``core_average``: all five categories).
- A task with sub-categories (MMLU's subjects) scores the unweighted mean of its sub-categories' accuracies
  (the callback's ``extract_metrics_from_state`` averages the dataloaders of one label).

What differs from llm-foundry: the tasks run as lm-evaluation-harness tasks (``shared.eval.benchmarks``: its
prompts and its public data sets read from ``data_dir``), not llm-foundry's ICL prompts over its own jsonl
copies; multiple choice reads ``acc_norm`` where the harness has it (llm-foundry picks the choice of lowest mean
per-token loss, a length-normalised choice; the harness normalises by bytes), else ``acc``; generation tasks read
the harness's exact match. GSM8K is the harness's ``gsm8k_cot`` (8 chain-of-thought shots ending in "The answer
is", the prompt the Gauntlet prepends). AGIEval runs zero-shot, not 5-shot: the harness's task has a list of
gold indices as its target, which it cannot write as a shot. The six tasks the harness does not ship run as our
harness tasks (``shared/eval/harness_tasks``): Jeopardy, SVAMP and the simple-arithmetic sets read llm-foundry's own
jsonl rows; SQuAD (v1.1 validation, rajpurkar/squad rows) and CoQA (validation, stanfordnlp/coqa rows, one example per
question after the story and the earlier turns) read the public datasets, since llm-foundry's copies are not among
its repository's files, in the harness's prompt layouts; all are scored as llm-foundry scores them (greedy
continuation; Jeopardy's mean over its categories; SVAMP's answer after "The answer is "). A task left out
(``only``, or missing data) leaves its category ``partial``: scored on the rest (llm-foundry would drop it), so
not comparable with a full Gauntlet's.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .benchmarks import CausalLMAdapter, evaluate_benchmarks, load_lm

SOURCE = ("mosaicml/llm-foundry@v0.9.1 (1402b7edf0301889b1c100c4a00ddc616ce808f8) "
          "scripts/eval/yamls/eval_gauntlet_v0.3.yaml, scripts/eval/yamls/tasks_v0.3.yaml")


@dataclass(frozen=True)
class GauntletTask:
    """One benchmark of a Gauntlet category, as the yaml gives it, and how we score it.

    benchmark: our task name (``shared.eval.benchmarks.BENCHMARKS`` or ``mmlu``), None where the harness lacks
    it; metric: the harness metric read as the task's accuracy; shots: the few-shot count we ask the harness for
    (the yaml's, except GSM8K: see the module docstring)."""
    name: str
    num_fewshot: int
    random_baseline: float
    benchmark: str | None
    metric: str = "acc"
    shots: int | None = None

    @property
    def fewshot(self) -> int:
        return self.num_fewshot if self.shots is None else self.shots


def _t(name, k, b, bench=None, metric="acc", shots=None) -> GauntletTask:
    return GauntletTask(name, k, b, bench, metric, shots)


EM = "exact_match"
# eval_gauntlet_v0.3.yaml, in its order: (label, num_fewshot, random_baseline) -> our harness task and metric
CATEGORIES: dict[str, tuple[GauntletTask, ...]] = {
    "world_knowledge": (
        _t("jeopardy", 3, 0.0, "jeopardy"),
        _t("bigbench_qa_wikidata", 3, 0.0, "bigbench_qa_wikidata", EM),
        _t("arc_easy", 3, 0.25, "arc_easy", "acc_norm"),
        _t("arc_challenge", 3, 0.25, "arc_challenge", "acc_norm"),
        _t("mmlu", 5, 0.25, "mmlu"),
        _t("triviaqa_sm_sub", 3, 0.0, "triviaqa", EM + "/remove_whitespace")),
    "commonsense_reasoning": (
        _t("copa", 0, 0.5, "copa"),
        _t("siqa", 3, 0.5, "siqa"),
        _t("commonsense_qa", 0, 0.25, "commonsense_qa"),
        _t("piqa", 0, 0.5, "piqa", "acc_norm"),
        _t("openbook_qa", 10, 0.25, "openbookqa", "acc_norm"),
        _t("bigbench_strange_stories", 0, 0.5, "bigbench_strange_stories"),
        _t("bigbench_strategy_qa", 0, 0.5, "bigbench_strategyqa")),
    "language_understanding": (
        _t("lambada_openai", 0, 0.0, "lambada_openai"),
        _t("hellaswag", 0, 0.25, "hellaswag", "acc_norm"),
        _t("winograd", 3, 0.5, "wsc273"),
        _t("winogrande", 5, 0.5, "winogrande")),
    "symbolic_problem_solving": (
        _t("bigbench_elementary_math_qa", 1, 0.25, "bigbench_elementary_math_qa"),
        _t("bigbench_dyck_languages", 5, 0.0, "bigbench_dyck_languages", EM),
        _t("bigbench_operators", 3, 0.0, "bigbench_operators", EM),
        _t("simple_arithmetic_withspaces", 5, 0.0, "simple_arithmetic_withspaces"),
        _t("simple_arithmetic_nospaces", 5, 0.0, "simple_arithmetic_nospaces"),
        _t("gsm8k", 0, 0.0, "gsm8k_cot", EM + "/strict-match", shots=8),
        _t("svamp", 5, 0.0, "svamp", EM),
        _t("agi_eval_lsat_ar", 5, 0.25, "agieval_lsat_ar", "acc_norm", shots=0)),
    "reading_comprehension": (
        _t("squad", 3, 0.0, "squad"),
        _t("boolq", 0, 0.5, "boolq"),
        _t("coqa", 0, 0.0, "coqa"),
        _t("agi_eval_lsat_rc", 5, 0.25, "agieval_lsat_rc", "acc_norm", shots=0),
        _t("agi_eval_lsat_lr", 5, 0.25, "agieval_lsat_lr", "acc_norm", shots=0),
        _t("agi_eval_sat_en", 5, 0.25, "agieval_sat_en", "acc_norm", shots=0)),
}
AVERAGES: dict[str, tuple[str, ...]] = {"core_average": tuple(CATEGORIES)}
# Gauntlet tasks with no harness task to run them (none since our harness_tasks/ YAMLs add the six lm-evaluation-harness
# 0.4 does not ship: Jeopardy, SQuAD v1.1 and CoQA as greedy continuations, SVAMP, the simple-arithmetic sets)
HARNESS_LACKS = tuple(t.name for ts in CATEGORIES.values() for t in ts if t.benchmark is None)


def tasks(categories: Iterable[str] | None = None) -> list[GauntletTask]:
    """The Gauntlet tasks of ``categories`` (default: all), in the yaml's order."""
    names = list(CATEGORIES) if categories is None else list(categories)
    unknown = [c for c in names if c not in CATEGORIES]
    if unknown:
        raise ValueError(f"unknown Gauntlet categories {unknown}; known: {', '.join(CATEGORIES)}")
    return [t for c in names for t in CATEGORIES[c]]


def rescale(accuracy: float, random_baseline: float) -> float:
    """(acc - b) / (1 - b): 0 at the random baseline, 1 at perfect accuracy."""
    if not 0.0 <= random_baseline < 1.0:
        raise ValueError(f"a random baseline must be in [0, 1), got {random_baseline}")
    return (accuracy - random_baseline) / (1.0 - random_baseline)


@dataclass
class GauntletResult:
    """tasks: {Gauntlet label: {"accuracy", "score" (rescaled), "benchmark", "metric"}} of the scored tasks;
    categories: {category: mean score of its scored tasks}; averages: {"core_average": mean of the categories
    scored}; not_scored: {category: [labels]} the harness lacks or that were left out; partial: categories scored
    on only some of their tasks."""
    tasks: dict[str, dict] = field(default_factory=dict)
    categories: dict[str, float] = field(default_factory=dict)
    averages: dict[str, float] = field(default_factory=dict)
    not_scored: dict[str, list[str]] = field(default_factory=dict)
    partial: list[str] = field(default_factory=list)

    @property
    def average(self) -> float:
        return self.averages["core_average"]

    def flat(self, prefix: str = "gauntlet") -> dict[str, float]:
        """{prefix_average, prefix_<category>, prefix_task_<label>: value} (scores, not raw accuracies)."""
        out = {f"{prefix}_average" if k == "core_average" else f"{prefix}_{k}": v for k, v in self.averages.items()}
        out.update({f"{prefix}_{c}": v for c, v in self.categories.items()})
        out.update({f"{prefix}_task_{n}": t["score"] for n, t in self.tasks.items()})
        return out

    def to_dict(self) -> dict:
        return {"average": self.averages.get("core_average"), "averages": self.averages,
                "categories": self.categories, "tasks": self.tasks, "not_scored": self.not_scored,
                "partial": self.partial, "source": SOURCE}


def score(accuracies: Mapping[str, float], categories: Iterable[str] | None = None) -> GauntletResult:
    """The Gauntlet's aggregation of ``accuracies`` ({Gauntlet label: accuracy in [0, 1]}) over ``categories``
    (default: all). A category with no scored task gets no score; the averages use the categories scored."""
    result = GauntletResult()
    names = list(CATEGORIES) if categories is None else list(categories)
    for cat in names:
        scores, missing = [], []
        for t in tasks([cat]):
            if t.name in accuracies:
                s = rescale(float(accuracies[t.name]), t.random_baseline)
                result.tasks[t.name] = {"accuracy": float(accuracies[t.name]), "score": s, "category": cat,
                                        "random_baseline": t.random_baseline, "benchmark": t.benchmark,
                                        "metric": t.metric}
                scores.append(s)
            else:
                missing.append(t.name)
        if missing:
            result.not_scored[cat] = missing
        if scores:
            result.categories[cat] = sum(scores) / len(scores)
            if missing:
                result.partial.append(cat)
    for avg, cats in AVERAGES.items():
        have = [result.categories[c] for c in cats if c in result.categories]
        if have:
            result.averages[avg] = sum(have) / len(have)
    return result


def accuracy_of(task: GauntletTask, results: Mapping[str, Mapping[str, float]]) -> float:
    """The task's accuracy from ``evaluate_benchmarks`` results; MMLU: the unweighted mean over its subjects."""
    if task.benchmark == "mmlu":
        subjects = [m["acc"] for n, m in results.items() if n.startswith("mmlu_")]
        if not subjects:
            raise KeyError("no MMLU subject in the results")
        return sum(subjects) / len(subjects)
    metrics = results[task.benchmark]
    if task.metric not in metrics:
        raise KeyError(f"{task.name}: the harness's {task.benchmark} has no metric {task.metric!r} ({sorted(metrics)})")
    return metrics[task.metric]


def evaluate_gauntlet(lm, data_dir: str | Path, *, categories: Sequence[str] | None = None,
                      only: Sequence[str] | None = None, limit: int | None = None,
                      mmlu_subjects: Sequence[str] | None = None) -> GauntletResult:
    """The Gauntlet of ``lm`` (a harness LM: ``shared.eval.benchmarks.load_lm`` or ``CausalLMAdapter``) on the
    tasks' public files under ``data_dir`` (``shared.eval.benchmarks.local_task_spec``), each at its Gauntlet
    shots. ``only``: score just these Gauntlet labels (the others are listed as not scored; smoke runs on
    fixtures); ``mmlu_subjects``: MMLU on these subjects only (default: all 57); ``limit``: examples per task.
    On ranks other than 0 of a launched job: an empty result."""
    wanted = [t for t in tasks(categories) if t.benchmark is not None and (only is None or t.name in only)]
    if only is not None:
        unknown = set(only) - {t.name for t in tasks(categories)}
        if unknown:
            raise ValueError(f"not Gauntlet tasks of {categories or 'any category'}: {sorted(unknown)}")
    by_shots: dict[int, list[GauntletTask]] = {}
    for t in wanted:
        by_shots.setdefault(t.fewshot, []).append(t)
    accuracies: dict[str, float] = {}
    on_rank_0 = True
    for shots, group in by_shots.items():
        names = []
        for t in group:
            names += [f"mmlu_{s}" for s in mmlu_subjects] if t.benchmark == "mmlu" and mmlu_subjects else [t.benchmark]
        # every rank takes part in every group (the harness shards each one across ranks); only rank 0 gets results
        results = evaluate_benchmarks(lm, names, data_dir, num_fewshot=shots, limit=limit)
        if not results:
            on_rank_0 = False
            continue
        accuracies.update({t.name: accuracy_of(t, results) for t in group})
    return score(accuracies, categories) if on_rank_0 else GauntletResult()


@dataclass
class GauntletEval:
    """An eval_fn for ``shared.train.Trainer``: the model being trained, scored on the Gauntlet read from
    ``data_dir`` -> ``GauntletResult.flat()`` (``gauntlet_average``, ``gauntlet_<category>``,
    ``gauntlet_task_<label>``). Arguments as ``evaluate_gauntlet``'s; under torchrun only rank 0 gets values."""
    data_dir: str
    tokenizer: Any
    categories: tuple[str, ...] | None = None
    only: tuple[str, ...] | None = None
    mmlu_subjects: tuple[str, ...] | None = None
    limit: int | None = None
    batch_size: int = 16
    max_gen_toks: int = 256            # new tokens per generation where the task sets none

    def __call__(self, model) -> dict[str, float]:
        lm = CausalLMAdapter(model, self.tokenizer, batch_size=self.batch_size, max_gen_toks=self.max_gen_toks)
        return evaluate_gauntlet(lm, self.data_dir, categories=self.categories, only=self.only, limit=self.limit,
                                 mmlu_subjects=self.mmlu_subjects).flat()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m shared.eval.gauntlet", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a transformers checkpoint folder or one of our run folders")
    p.add_argument("--data-dir", required=True,
                   help="holds <task folder>/<split>.jsonl|.parquet (shared.eval.benchmarks.BENCHMARKS)")
    p.add_argument("--categories", default=None, help="comma-separated: " + ", ".join(CATEGORIES))
    p.add_argument("--only", default=None, help="comma-separated Gauntlet labels to score (default: every one the "
                                                 "harness ships)")
    p.add_argument("--limit", type=int, default=None, help="at most this many examples per task")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default=None)
    p.add_argument("--json", action="store_true", help="print only the JSON object")
    args = p.parse_args(argv)
    split = (lambda s: [x.strip() for x in s.split(",") if x.strip()] if s else None)
    try:
        lm = load_lm(args.model, batch_size=args.batch_size, device=args.device)
        result = evaluate_gauntlet(lm, args.data_dir, categories=split(args.categories), only=split(args.only),
                                   limit=args.limit)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not args.json:
        for name, value in result.flat().items():
            print(f"{name:50s} {value:.4f}", file=sys.stderr)
        print(f"not scored: {result.not_scored}", file=sys.stderr)
    print(json.dumps(result.to_dict()))
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["AVERAGES", "CATEGORIES", "GauntletEval", "GauntletResult", "GauntletTask", "HARNESS_LACKS", "SOURCE",
           "accuracy_of", "evaluate_gauntlet", "main", "rescale", "score", "tasks"]
