"""The six Gauntlet tasks lm-evaluation-harness does not ship (shared/eval/harness_tasks): their rows read through
the harness, their prompts, and llm-foundry's scoring (greedy continuation, Jeopardy's mean over categories,
SVAMP's answer after "The answer is "), checked with an oracle model that is right exactly where we say."""
from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
pytest.importorskip("lm_eval")

import datasets  # noqa: E402
from lm_eval.api.model import LM  # noqa: E402

from shared.eval import gauntlet as G  # noqa: E402
from shared.eval.benchmark_fixtures import write_fixtures  # noqa: E402
from shared.eval.benchmarks import HARNESS_TASKS, evaluate_benchmarks  # noqa: E402
from shared.eval.harness_tasks import gauntlet_docs as D  # noqa: E402

OWN = ["jeopardy", "simple_arithmetic_withspaces", "simple_arithmetic_nospaces", "svamp", "squad", "coqa"]


def _answers(folder) -> dict[str, str]:
    """{text that ends the prompt of an example: its right answer} from the fixture files."""
    keys = {}
    for task in OWN:
        for path in (folder / task).glob("*.jsonl"):
            for row in map(json.loads, path.read_text().splitlines()):
                if task == "coqa":        # the whole prompt: the same question recurs across stories
                    text = row["story"] + "\n\n"
                    for q, a in zip(row["questions"], row["answers"]["input_text"]):
                        keys[f"{text}Q: {q}\n\nA:"] = a
                        text += f"Q: {q}\n\nA: {a}\n\n"
                elif task == "squad":
                    keys[f"Background: {row['context']}"] = row["answers"]["text"][0]
                else:
                    keys[row["context"]] = str(row.get("answer", row.get("continuation", ""))).strip()
    return keys


class Oracle(LM):
    """Right on every example except those whose prompt contains ``wrong``; records every prompt it is shown."""

    def __init__(self, answers: dict[str, str], wrong: str = "\x00"):
        super().__init__()
        self.answers, self.wrong, self.prompts = answers, wrong, []

    def _right(self, context: str) -> str | None:
        # the example being asked is the one whose text ends last in the prompt (the shots come before it)
        tail = max((k for k in self.answers if k in context), key=lambda k: context.rfind(k) + len(k))
        return None if self.wrong in context[context.rfind(tail):] else self.answers[tail]

    def loglikelihood(self, requests, disable_tqdm=False):
        out = []
        for context, continuation in [r.args for r in requests]:
            self.prompts.append(context)
            out.append((-1.0, continuation.strip() == self._right(context)))
        return out

    def loglikelihood_rolling(self, requests, disable_tqdm=False):
        raise NotImplementedError

    def generate_until(self, requests, disable_tqdm=False):
        out = []
        for context, _ in [r.args for r in requests]:
            self.prompts.append(context)
            right = self._right(context)
            out.append(f" ( sum ) The answer is {right if right is not None else 'none'}.\n\nQuestion: next")
        return out


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("own_tasks")
    write_fixtures(folder, OWN, rows=3, shot_rows=10)
    return folder


def test_the_yamls_are_the_benchmarks_of_the_six_tasks():
    assert G.HARNESS_LACKS == ()
    assert {t.name for t in G.tasks() if t.benchmark in OWN} == set(OWN)
    assert sorted(p.stem for p in HARNESS_TASKS.glob("*.yaml")) == sorted(f"gauntlet_{t}" for t in OWN)


def test_an_oracle_scores_one_and_its_prompts_have_the_gauntlet_shots(data):
    oracle = Oracle(_answers(data))
    shots = {t.name: t.fewshot for t in G.tasks()}
    results = {}
    for task in OWN:
        start = len(oracle.prompts)
        results.update(evaluate_benchmarks(oracle, [task], data, num_fewshot=shots[task]))
        prompts = oracle.prompts[start:]
        assert prompts, task
        if task == "jeopardy":
            assert all(p.endswith("\nAnswer:") and p.count("\nAnswer: ") == 3 for p in prompts)
        if task == "svamp":
            assert all(p.startswith("Question: ") and p.endswith("\n\nA:") and p.count("The answer is ") == 5
                       for p in prompts)
        if task.startswith("simple_arithmetic"):
            assert all(p.count("\n") == 5 for p in prompts)
        if task == "squad":
            assert all(p.count("Background: ") == 4 for p in prompts)
        if task == "coqa":       # every turn, each after the story and the earlier turns' answers
            assert any("first?\n\nA: " in p and p.endswith("more?\n\nA:") for p in prompts)
    assert results["svamp"]["exact_match"] == 1.0
    for task in OWN:
        if task != "svamp":
            assert results[task]["acc"] == 1.0, task
    assert len([p for p in oracle.prompts if p.endswith("more?\n\nA:")]) == 10       # 10 stories, 2 turns each


def test_jeopardy_averages_its_categories_and_svamp_reads_the_answer(data):
    rows = [json.loads(x) for x in (data / "jeopardy" / "test.jsonl").read_text().splitlines()]
    assert sorted(r["category"] for r in rows[:3]) == ["differences", "sums", "sums"]
    oracle = Oracle(_answers(data), wrong="DIFFERENCES:")
    acc = evaluate_benchmarks(oracle, ["jeopardy"], data, num_fewshot=3, limit=3)["jeopardy"]["acc"]
    assert acc == pytest.approx(0.5)          # sums 2/2, differences 0/1: the mean of categories, not 2/3
    wrong = Oracle(_answers(data), wrong="Sam has")
    assert evaluate_benchmarks(wrong, ["svamp"], data, num_fewshot=5, limit=3)["svamp"]["exact_match"] == 0.0


def test_svamp_answer_matching_is_llm_foundrys():
    assert D.answer_matches(" (3 + 4) The answer is 7.\n\nQuestion: x", ["7"]) == 1
    assert D.answer_matches(" The answer is 70", ["7"]) == 1                 # a prefix match, as llm-foundry
    assert D.answer_matches(" The answer is 8. The answer is 7", ["7"]) == 1   # the last delimiter counts
    assert D.answer_matches(" The answer is 8", ["7", "8"]) == 1               # aliases
    assert D.answer_matches(" I think 7\n\nThe answer is 7", ["7"]) == 0       # cut at the first stop string
    assert D.normalize_answer("The  Tower_of London!") == "tower of london"


def test_category_mean_and_coqa_turns():
    assert D.category_mean([("a", 1), ("a", 1), ("a", 1), ("b", 0)]) == pytest.approx(0.5)
    ds = datasets.Dataset.from_list([{"story": "S.", "questions": ["q1", "q2"],
                                      "answers": {"input_text": ["a1", "a2"]}}])
    turns = D.coqa_turns(ds)
    assert turns["context"] == ["S.\n\nQ: q1\n\nA:", "S.\n\nQ: q1\n\nA: a1\n\nQ: q2\n\nA:"]
    assert turns["continuation"] == ["a1", "a2"]
    bad = datasets.Dataset.from_list([{"story": "S.", "questions": ["q1"], "answers": {"input_text": ["a1", "a2"]}}])
    with pytest.raises(ValueError, match="1 questions but 2 answers"):
        D.coqa_turns(bad)


def test_the_preflight_names_each_missing_benchmark_file(tmp_path):
    from papers.domain_upsampling.preflight import benchmark_files
    from shared.preflight.report import data_errors
    evals = {"harness": {"data_dir": "{data_dir}/benchmarks", "tasks": ["mmlu", "gsm8k"]},
             "gauntlet": {"data_dir": "{data_dir}/benchmarks", "categories": None, "limit": None}}
    reqs = benchmark_files(evals)
    names = {r.what for r in reqs}
    assert {"coqa rows", "jeopardy rows", "squad rows", "svamp rows", "mmlu rows", "gsm8k_cot rows"} <= names
    assert "{data_dir}/benchmarks/coqa/validation.jsonl" in next(r.path for r in reqs if r.what == "coqa rows")
    every = [t.benchmark for t in G.tasks() if t.benchmark not in ("mmlu", "coqa")] + ["mmlu_anatomy", "gsm8k"]
    write_fixtures(tmp_path / "benchmarks", every, rows=1, shot_rows=1)
    errors = data_errors(reqs, tmp_path)
    assert len(errors) == 1 and "coqa/validation.jsonl" in errors[0], errors
