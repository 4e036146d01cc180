import json

import pytest
import torch

from eval_helpers import CharTokenizer, SuccessorLM, TinyLM
from shared.eval.formats import MathProblem, read_gsm8k
from shared.eval.generation import (evaluate_gsm8k, exact_match, extract_answer, generate, gsm8k_prompt,
                                    normalize_number, truncate_at_stop)

TOK = CharTokenizer()


@pytest.mark.parametrize("text, expected", [
    ("1,234", "1234"), ("$7", "7"), ("3.0", "3"), ("2.50", "2.5"), ("-4", "-4"), ("-0.0", "0"),
    (".5", "0.5"), ("12.", "12"), ("no digits", None), ("about 10,000,000 people", "10000000"),
])
def test_normalize_number(text, expected):
    assert normalize_number(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("She pays 3 * 4 = 12 dollars.\n#### 12", "12"),
    ("#### 1,000.00 and then 7", "1000"),
    ("First 5, then 6, so the answer is 72.", "72"),
    ("#### none\nbut 9", "9"),
    ("nothing numeric", None),
])
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_exact_match():
    assert exact_match("1,203", "1203") and exact_match("5.0", "5")
    assert not exact_match("12", "13") and not exact_match(None, "1")


def test_truncate_at_stop():
    assert truncate_at_stop("42\n\nQuestion: next", ["\n\nQuestion:", "\n\n"]) == "42"
    assert truncate_at_stop("abc", ["x"]) == "abc"


def test_plain_loop_greedy_and_stop_strings():
    model = SuccessorLM(TOK.vocab_size)
    out = generate(model, TOK, ["a", "ab", "x"], max_new_tokens=5)
    chars = TOK.chars
    succ = lambda c, n: "".join(chars[(TOK.stoi[c] + i) % len(chars)] for i in range(1, n + 1))  # noqa: E731
    assert out == [succ("a", 5), succ("b", 5), succ("x", 5)]
    stop_at = succ("a", 3)[-1]
    assert generate(model, TOK, ["a"], max_new_tokens=5, stop=[stop_at]) == [succ("a", 2)]


def test_sampling_is_seeded():
    model = TinyLM(TOK.vocab_size, seed=3)
    a = generate(model, TOK, ["hello", "hello"], max_new_tokens=8, temperature=1.0, seed=7)
    b = generate(model, TOK, ["hello", "hello"], max_new_tokens=8, temperature=1.0, seed=7)
    assert a == b and len(a[0]) == 8


class ScriptedLM(torch.nn.Module):
    """Has a `generate(input_ids, max_new_tokens, temperature, top_k, eos_id)` that answers from a script."""

    def __init__(self, script: dict[str, str]):
        super().__init__()
        self.script, self.calls = script, 0

    def forward(self, input_ids):  # never used: generate() must be preferred
        raise AssertionError("the model's own generate() should have been used")

    def generate(self, input_ids, max_new_tokens, temperature=0.0, top_k=None, eos_id=None):
        self.calls += 1
        rows = []
        for row in input_ids.tolist():
            prompt = TOK.decode(row)
            answer = next(v for k, v in self.script.items() if k in prompt) + "\n\n"
            answer = (answer + " " * max_new_tokens)[:max_new_tokens]
            rows.append(row + TOK.encode(answer))
        return torch.tensor(rows)


def test_gsm8k_end_to_end_with_model_generate(tmp_path):
    rows = [{"question": "Ann has 2 cats and gets 3 more. How many cats?", "answer": "2 + 3 = 5\n#### 5"},
            {"question": "Bob had 10 dollars and spent 4. How many left?", "answer": "10 - 4 = 6\n#### 6"},
            {"question": "What is 1,000 times 2?", "answer": "#### 2,000"}]
    path = tmp_path / "gsm8k.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    problems = read_gsm8k(path)
    model = ScriptedLM({"cats": "2 + 3 = 5. #### 5", "dollars": "She has 7 left", "1,000": "2000.0"})
    r = evaluate_gsm8k(model, TOK, problems, max_new_tokens=24)
    assert model.calls >= 1
    assert r.predictions == ["5", "7", "2000"]
    assert r.accuracy == pytest.approx(2 / 3) and r.n == 3
    assert all("\n\n" not in c for c in r.completions)


def test_gsm8k_prompt_with_fewshot():
    shot = MathProblem("1+1?", "1 + 1 = 2\n#### 2", "2")
    p = gsm8k_prompt(MathProblem("2+2?", "", "4"), [shot])
    assert p == "Question: 1+1?\nAnswer: 1 + 1 = 2\n#### 2\n\nQuestion: 2+2?\nAnswer:"


def test_our_gpt_generate_agrees_with_the_plain_loop():
    gpt = pytest.importorskip("shared.models.gpt")
    cfg = gpt.GPTConfig(vocab_size=TOK.vocab_size, n_layer=2, n_head=2, d_model=32, max_seq_len=64,
                        attn_backend="reference")
    torch.manual_seed(0)
    model = gpt.GPT(cfg)
    prompts = ["def add(a, b):", "x = 1"]
    native = generate(model, TOK, prompts, max_new_tokens=10)

    class NoGenerate(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m, self.cfg = m, m.cfg

        def forward(self, ids):
            return self.m(ids)

    loop = generate(NoGenerate(model), TOK, prompts, max_new_tokens=10)
    assert native == loop and all(len(s) == 10 for s in native)
