"""GSM8K-shaped arithmetic word problems with exact answers.

A record is `{"question": str, "answer": str}`, as in GSM8K's jsonl: the answer is worked steps, each
calculation annotated `<<a*b=c>>`, then a last line `#### <final answer>`, e.g.

    question: "Eva sold 48 apples in April, and then she sold half as many apples in May. How many ..."
    answer:   "Eva sold 48/2 = <<48/2=24>>24 apples in May.\\nEva sold 48+24 = <<48+24=72>>72 apples ...
               \\n#### 72"

Ten templates of one to three steps (+, -, *, /, percentages), names, items and numbers drawn from a
seeded numpy Generator. `max_number` bounds every number in a question except the bank notes ($20,
$50, $100) and percentages; worked steps and answers may go beyond it. `to_text` is the training
document: `format_prompt(question) + " " + answer` (the eval prompts with `format_prompt`).
"""
from __future__ import annotations

import re

import numpy as np

from shared.data.generated.common import FIRST_NAMES, PRONOUNS, choice, generate_unique

ITEMS = ("apples", "pencils", "stickers", "marbles", "cookies", "books", "shells", "stamps", "cards", "eggs")
THINGS = ("a bike", "a lamp", "a coat", "a game", "a radio", "a tent")


def _calc(expr: str) -> int:
    value = eval(expr, {"__builtins__": {}})           # our own arithmetic strings: digits and + - * /
    if value != int(value):
        raise ArithmeticError(f"{expr} is not an integer")
    return int(value)


def _step(before: str, expr: str, after: str) -> tuple[str, int]:
    value = _calc(expr)
    return f"{before}{expr} = <<{expr}={value}>>{value}{after}", value


def _problem(rng: np.random.Generator, m: int) -> dict:
    name = choice(rng, FIRST_NAMES)
    other = choice(rng, [n for n in FIRST_NAMES if n != name])
    p = PRONOUNS[name]
    item = choice(rng, ITEMS)

    def num(lo: int, hi: int) -> int:               # inclusive, capped by max_number
        return int(rng.integers(lo, max(lo, min(hi, m)) + 1))

    t = int(rng.integers(10))
    steps: list[str] = []
    if t == 0:
        a = 2 * num(1, m // 2)
        q = (f"{name} sold {a} {item} in April, and then {p} sold half as many {item} in May. "
             f"How many {item} did {name} sell altogether in April and May?")
        s, b = _step(f"{name} sold ", f"{a}/2", f" {item} in May."); steps.append(s)
        s, final = _step(f"{name} sold ", f"{a}+{b}", f" {item} altogether in April and May."); steps.append(s)
    elif t == 1:
        r, h = num(2, 30), num(2, 12)
        q = f"{name} earns ${r} an hour babysitting. Yesterday, {p} babysat for {h} hours. How much did {p} earn?"
        s, final = _step(f"{name} earned ", f"{r}*{h}", " dollars."); steps.append(s)
    elif t == 2:
        n, price = num(2, 9), num(1, 12)
        bill = choice(rng, [b for b in (20, 50, 100) if b >= n * price] or [100])
        if n * price > bill:
            n, price = 2, 5
        q = (f"{name} buys {n} {item} that cost ${price} each and pays with a ${bill} bill. "
             f"How much change does {p} get?")
        s, c = _step(f"The {item} cost ", f"{n}*{price}", " dollars."); steps.append(s)
        s, final = _step(f"{name} gets ", f"{bill}-{c}", " dollars in change."); steps.append(s)
    elif t == 3:
        a = num(10, m); b = num(1, a - 1); c = num(1, m)
        q = (f"{name} has {a} {item}. {p.capitalize()} gives {b} to {other} and then buys {c} more. "
             f"How many {item} does {name} have now?")
        s, r = _step(f"After giving some away, {name} has ", f"{a}-{b}", f" {item}."); steps.append(s)
        s, final = _step("After buying more, ", f"{r}+{c}", f" {item}."); steps.append(s)
    elif t == 4:
        g, k = num(2, 12), num(2, 12)
        tk = int(rng.integers(1, min(g * k - 1, m) + 1))
        q = (f"There are {g} boxes with {k} {item} in each box. {name} takes out {tk} {item}. "
             f"How many {item} are left in the boxes?")
        s, tot = _step("The boxes hold ", f"{g}*{k}", f" {item}."); steps.append(s)
        s, final = _step("There are ", f"{tot}-{tk}", f" {item} left."); steps.append(s)
    elif t == 5:
        k = num(2, 9)
        each = num(2, max(2, min(12, m // k)))
        q = (f"{name} has {k * each} {item} and shares them equally among {k} friends. "
             f"How many {item} does each friend get?")
        s, final = _step("Each friend gets ", f"{k * each}/{k}", f" {item}."); steps.append(s)
    elif t == 6:
        s1, h1, s2, h2 = num(10, 90), num(2, 6), num(10, 90), num(2, 6)
        q = (f"A train travels at {s1} miles per hour for {h1} hours and then at {s2} miles per hour "
             f"for {h2} hours. How many miles does it travel in total?")
        s, d1 = _step("First it travels ", f"{s1}*{h1}", " miles."); steps.append(s)
        s, d2 = _step("Then it travels ", f"{s2}*{h2}", " miles."); steps.append(s)
        s, final = _step("In total it travels ", f"{d1}+{d2}", " miles."); steps.append(s)
    elif t == 7:
        a, k = num(2, 40), num(2, 5)
        q = (f"{name} read {a} pages on Monday. On Tuesday, {p} read {k} times as many pages as on Monday. "
             f"How many pages did {p} read on the two days?")
        s, b = _step(f"On Tuesday {p} read ", f"{a}*{k}", " pages."); steps.append(s)
        s, final = _step(f"{p.capitalize()} read ", f"{a}+{b}", " pages in total."); steps.append(s)
    elif t == 8:
        a, w = num(2, 25), num(2, 10)
        spend = int(rng.integers(1, min(a * w - 1, m) + 1))
        thing = choice(rng, THINGS)
        q = (f"{name} saves ${a} every week. After {w} weeks, {p} spends ${spend} on {thing}. "
             f"How much money does {p} have left?")
        s, saved = _step(f"{name} saved ", f"{a}*{w}", " dollars."); steps.append(s)
        s, final = _step(f"{p.capitalize()} has ", f"{saved}-{spend}", " dollars left."); steps.append(s)
    else:
        price = 20 * num(1, max(1, m // 20))
        off = choice(rng, (10, 20, 25, 50))
        thing = choice(rng, THINGS)
        q = f"{name} wants {thing} that costs ${price}. It is on sale for {off}% off. How much does {p} pay?"
        s, d = _step("The discount is ", f"{price}*{off}/100", " dollars."); steps.append(s)
        s, final = _step(f"{name} pays ", f"{price}-{d}", " dollars."); steps.append(s)
    return {"question": q, "answer": "\n".join(steps) + f"\n#### {final}"}


def generate_arithmetic(n: int, seed: int = 0, max_number: int = 100) -> list[dict]:
    """n distinct GSM8K-shaped problems `{"question", "answer"}` (deterministic in seed)."""
    if max_number < 10:
        raise ValueError(f"max_number must be >= 10, got {max_number}")
    return generate_unique(lambda rng: _problem(rng, max_number), n, seed, key="question",
                           stream=f"arithmetic/{max_number}")


def arithmetic_splits(n_train: int, n_test: int, seed: int = 0,
                      max_number: int = 100) -> tuple[list[dict], list[dict]]:
    """Disjoint (train, test) problem lists: no test question appears in any training problem."""
    problems = generate_arithmetic(n_train + n_test, seed, max_number)
    return problems[n_test:], problems[:n_test]


_FINAL = re.compile(r"####\s*(-?[\d,]+(?:\.\d+)?)")


def final_answer(answer: str) -> str | None:
    """The number after '####' in a GSM8K answer (commas removed), or None when absent."""
    m = _FINAL.search(answer)
    return m.group(1).replace(",", "") if m else None


def format_prompt(question: str) -> str:
    """The prompt a model is given at evaluation time; training text continues it with the answer."""
    return f"Question: {question}\nAnswer:"


def to_text(record: dict) -> str:
    """A training document: the prompt followed by the worked answer."""
    return format_prompt(record["question"]) + " " + record["answer"]
