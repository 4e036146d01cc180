"""pass@k estimator, completion truncation, and real HumanEval problems run in the sandbox."""
import math
from fractions import Fraction

import pytest

from eval_helpers import CharTokenizer, TinyLM
from shared.eval.code import (STOP_SEQUENCES, evaluate_completions, humaneval_program, run_programs,
                              sample_completions, truncate_completion)
from shared.eval.formats import read_humaneval
from shared.eval.passk import mean_pass_at_k, pass_at_k

TASKS = ["HumanEval/0", "HumanEval/2", "HumanEval/53"]


def _exact(n, c, k):
    return float(1 - Fraction(math.comb(n - c, k), math.comb(n, k)))


@pytest.mark.parametrize("n, c, k", [(1, 0, 1), (1, 1, 1), (10, 3, 1), (10, 3, 5), (10, 8, 5), (20, 0, 10),
                                     (200, 13, 100), (200, 1, 1), (50, 49, 2)])
def test_pass_at_k_matches_exact_binomials(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(_exact(n, c, k), rel=1e-12, abs=1e-15)


def test_pass_at_k_properties():
    assert pass_at_k(10, 4, 1) == pytest.approx(0.4)          # pass@1 is the fraction correct
    assert pass_at_k(5, 3, 3) == 1.0                          # n - c < k: some sample must pass
    assert pass_at_k(1000, 0, 100) == 0.0
    vals = [pass_at_k(100, 5, k) for k in (1, 2, 5, 10, 50)]
    assert vals == sorted(vals)
    assert 0.0 <= pass_at_k(10_000, 3, 5_000) <= 1.0          # no overflow for large n
    with pytest.raises(ValueError):
        pass_at_k(5, 6, 1)
    with pytest.raises(ValueError):
        pass_at_k(5, 1, 6)
    assert mean_pass_at_k([(4, 1), (4, 4)], ks=(1, 10)) == {"pass@1": pytest.approx(0.625)}


def test_truncate_completion_at_stop_sequences():
    body = "    return a + b\n"
    for stop in STOP_SEQUENCES:
        assert truncate_completion(body + stop + "junk()") == body
    assert truncate_completion(body + "\n\n    # inner comment ok") == body + "\n\n    # inner comment ok"
    assert truncate_completion("    x = 1\n#comment\ndef g(): pass") == "    x = 1"


@pytest.fixture(scope="module")
def problems():
    return read_humaneval()


def test_program_layout(problems):
    p = problems["HumanEval/53"]
    prog = humaneval_program(p, "    return x + y\n")
    assert prog.startswith(p["prompt"]) and prog.rstrip().endswith("check(add)")
    assert p["test"] in prog


def test_canonical_solutions_pass_and_wrong_ones_fail(problems):
    wrong = {"HumanEval/0": "    return False\n", "HumanEval/2": "    return number\n",
             "HumanEval/53": "    return x - y\n"}
    completions = {t: [problems[t]["canonical_solution"], wrong[t], "    while True:\n        pass\n"]
                   for t in TASKS}
    r = evaluate_completions({t: problems[t] for t in TASKS}, completions, ks=(1, 2, 10), timeout_s=2.0)
    for t in TASKS:
        assert [x.passed for x in r.results[t]] == [True, False, False], r.results[t]
        assert r.results[t][2].timed_out
        assert "AssertionError" in r.results[t][1].stderr_tail
        assert r.counts[t] == (3, 1)
    assert r.pass_at_k == {"pass@1": pytest.approx(1 / 3), "pass@2": pytest.approx(2 / 3)}
    assert r.isolation


def test_truncation_applies_when_asked(problems):
    p = problems["HumanEval/53"]
    sampled = "    return x + y\n\ndef add(x, y):\n    return 0\n"   # model rambles on and redefines add
    plain = evaluate_completions({"HumanEval/53": p}, {"HumanEval/53": [sampled]}, ks=(1,))
    cut = evaluate_completions({"HumanEval/53": p}, {"HumanEval/53": [sampled]}, ks=(1,), truncate=True)
    assert plain.pass_at_k["pass@1"] == 0.0 and cut.pass_at_k["pass@1"] == 1.0


def test_unknown_task_ids_raise(problems):
    with pytest.raises(ValueError, match="unknown task ids"):
        evaluate_completions({"HumanEval/0": problems["HumanEval/0"]}, {"nope": ["pass"]})


def test_run_programs_keeps_order():
    out = run_programs([f"import sys; sys.exit({i})" for i in range(4)], timeout_s=5.0, workers=4)
    assert [r.exit_code for r in out] == [0, 1, 2, 3]


def test_sample_completions_from_a_tiny_model(problems):
    tok = CharTokenizer()
    model = TinyLM(tok.vocab_size, seed=0)
    subset = {t: problems[t] for t in TASKS[:2]}
    comps = sample_completions(model, tok, subset, n=3, temperature=1.0, max_new_tokens=12, seed=1)
    assert set(comps) == set(subset) and all(len(v) == 3 for v in comps.values())
    for texts in comps.values():
        for text in texts:
            assert len(text) <= 12 and not any(s in text for s in STOP_SEQUENCES)
    # a random model's code fails, but it runs through the whole pipeline
    r = evaluate_completions(subset, comps, ks=(1,), timeout_s=2.0)
    assert r.pass_at_k["pass@1"] == 0.0
