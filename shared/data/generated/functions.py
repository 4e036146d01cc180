"""HumanEval-shaped Python tasks generated from templates, with exact unit tests.

A record has HumanEval's fields:

    task_id             "Generated/17"
    prompt              the signature and a docstring with one doctest example, e.g. for add_constant:
                        "Return x plus 7." and ">>> add_constant(3)" / "10"
    canonical_solution  "    return x + 7\\n"
    test                "def check(candidate):\\n    assert candidate(3) == 10\\n    ..."
    entry_point         "add_constant"

Twenty templates (integer arithmetic, string edits, list filters and maps) with drawn constants and
names. The expected outputs in the tests come from a Python reference function per template, written
apart from the solution's source text, so `check_solution` really tests the source. `to_text` (prompt +
solution) is the training document; a model is prompted with `prompt` and should continue with a body.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from shared.data.generated.common import choice, generate_unique

_LETTERS = "abcdefghij"


@dataclass(frozen=True)
class _Spec:
    names: tuple[str, ...]
    signature: str          # "(x: int) -> int"
    doc: str
    body: str               # one or more lines, without indentation
    ref: Callable[..., Any]
    arg: str                # "int" | "str" | "list"


def _int_specs(r: np.random.Generator) -> list[_Spec]:
    k, a, b = int(r.integers(2, 20)), int(r.integers(2, 10)), int(r.integers(1, 20))
    lo = int(r.integers(-10, 10)); hi = lo + int(r.integers(3, 30))
    return [
        _Spec(("add_constant", "plus_k", "shift_up"), "(x: int) -> int", f"Return x plus {k}.",
              f"return x + {k}", lambda x: x + k, "int"),
        _Spec(("multiply", "times_k", "scale_number"), "(x: int) -> int", f"Return x multiplied by {k}.",
              f"return x * {k}", lambda x: x * k, "int"),
        _Spec(("affine", "linear_map"), "(x: int) -> int", f"Return {a} times x plus {b}.",
              f"return {a} * x + {b}", lambda x: a * x + b, "int"),
        _Spec(("subtract_then_multiply", "shifted_product"), "(x: int) -> int",
              f"Subtract {b} from x and return the result multiplied by {a}.",
              f"return (x - {b}) * {a}", lambda x: (x - b) * a, "int"),
        _Spec(("is_multiple", "divisible_by_k"), "(x: int) -> bool",
              f"Return True if x is divisible by {k}, otherwise False.",
              f"return x % {k} == 0", lambda x: x % k == 0, "int"),
        _Spec(("clamp", "clip_value"), "(x: int) -> int", f"Clamp x to the range from {lo} to {hi}.",
              f"return min(max(x, {lo}), {hi})", lambda x: min(max(x, lo), hi), "int"),
        _Spec(("digit_sum_times", "weighted_digit_sum"), "(x: int) -> int",
              f"Return the sum of the decimal digits of abs(x), multiplied by {k}.",
              f"return {k} * sum(int(d) for d in str(abs(x)))",
              lambda x: k * sum(int(d) for d in str(abs(x))), "int"),
    ]


def _str_specs(r: np.random.Generator) -> list[_Spec]:
    k = int(r.integers(2, 7))
    c, d = (str(ch) for ch in r.choice(list(_LETTERS), size=2, replace=False))
    p, q = (str(ch) for ch in r.choice(list("<>[]()*#"), size=2, replace=False))
    sep = choice(r, ("-", "+", ".", ":", "_"))
    return [
        _Spec(("repeat_string", "echo"), "(s: str) -> str", f"Return s repeated {k} times.",
              f"return s * {k}", lambda s: s * k, "str"),
        _Spec(("surround", "wrap_text"), "(s: str) -> str",
              f"Return s with '{p}' added at the start and '{q}' at the end.",
              f"return '{p}' + s + '{q}'", lambda s: p + s + q, "str"),
        _Spec(("count_char", "count_letter"), "(s: str) -> int",
              f"Return how many times the letter '{c}' occurs in s.",
              f"return s.count('{c}')", lambda s: s.count(c), "str"),
        _Spec(("replace_char", "swap_letter"), "(s: str) -> str",
              f"Return s with every '{c}' replaced by '{d}'.",
              f"return s.replace('{c}', '{d}')", lambda s: s.replace(c, d), "str"),
        _Spec(("prefix", "first_chars"), "(s: str) -> str", f"Return the first {k} characters of s.",
              f"return s[:{k}]", lambda s: s[:k], "str"),
        _Spec(("reverse_join", "spell_backwards"), "(s: str) -> str",
              f"Return the characters of s in reverse order, separated by '{sep}'.",
              f"return '{sep}'.join(reversed(s))", lambda s: sep.join(reversed(s)), "str"),
        _Spec(("upper_letter", "shout_letter"), "(s: str) -> str",
              f"Return s with every '{c}' written in upper case.",
              f"return s.replace('{c}', '{c.upper()}')", lambda s: s.replace(c, c.upper()), "str"),
    ]


def _list_specs(r: np.random.Generator) -> list[_Spec]:
    k = int(r.integers(2, 30))
    step = int(r.integers(2, 4))
    return [
        _Spec(("sum_above", "total_greater_than"), "(xs: list[int]) -> int",
              f"Return the sum of the elements of xs that are greater than {k}.",
              f"return sum(x for x in xs if x > {k})", lambda xs: sum(x for x in xs if x > k), "list"),
        _Spec(("count_multiples", "how_many_divisible"), "(xs: list[int]) -> int",
              f"Return how many elements of xs are divisible by {k}.",
              f"return sum(1 for x in xs if x % {k} == 0)", lambda xs: sum(1 for x in xs if x % k == 0), "list"),
        _Spec(("scale_list", "multiply_all"), "(xs: list[int]) -> list[int]",
              f"Return a new list with every element of xs multiplied by {k}.",
              f"return [x * {k} for x in xs]", lambda xs: [x * k for x in xs], "list"),
        _Spec(("keep_below", "filter_small"), "(xs: list[int]) -> list[int]",
              f"Return the elements of xs that are less than {k}, in their original order.",
              f"return [x for x in xs if x < {k}]", lambda xs: [x for x in xs if x < k], "list"),
        _Spec(("add_to_each", "shift_list"), "(xs: list[int]) -> list[int]",
              f"Return a new list with {k} added to every element of xs.",
              f"return [x + {k} for x in xs]", lambda xs: [x + k for x in xs], "list"),
        _Spec(("every_kth", "take_every"), "(xs: list[int]) -> list[int]",
              f"Return every {('second', 'third')[step - 2]} element of xs, starting with the first.",
              f"return xs[::{step}]", lambda xs: xs[::step], "list"),
    ]


def _inputs(r: np.random.Generator, kind: str, n: int) -> list[Any]:
    """n test inputs; the first (the docstring's example) is never empty."""
    if kind == "int":
        return [int(v) for v in r.integers(-20, 60, size=n)]
    sizes = [int(r.integers(3 if i == 0 else 0, 9)) for i in range(n)]
    if kind == "str":
        return ["".join(r.choice(list(_LETTERS), size=m)) for m in sizes]
    return [[int(v) for v in r.integers(0, 30, size=m)] for m in sizes]


def _task(r: np.random.Generator, n_tests: int) -> dict:
    family = choice(r, (_int_specs, _str_specs, _list_specs))
    spec = choice(r, family(r))
    name = choice(r, spec.names)
    args = _inputs(r, spec.arg, n_tests)
    example = args[0]
    prompt = (f"def {name}{spec.signature}:\n"
              f'    """{spec.doc}\n'
              f"    >>> {name}({example!r})\n"
              f"    {spec.ref(example)!r}\n"
              f'    """\n')
    solution = "".join(f"    {line}\n" for line in spec.body.split("\n"))
    test = "def check(candidate):\n" + "".join(
        f"    assert candidate({a!r}) == {spec.ref(a)!r}\n" for a in args)
    return {"prompt": prompt, "canonical_solution": solution, "test": test, "entry_point": name}


def generate_functions(n: int, seed: int = 0, n_tests: int = 5) -> list[dict]:
    """n HumanEval-shaped tasks with distinct prompts, task_ids 'Generated/0'... in order.

    Distinct prompts may share a specification (same docstring sentence and solution, another name or
    doctest example); `function_splits` keeps specifications apart between train and test.
    """
    tasks = generate_unique(lambda r: _task(r, n_tests), n, seed, key="prompt", stream="functions")
    return [{"task_id": f"Generated/{i}", **t} for i, t in enumerate(tasks)]


def spec_key(record: dict) -> str:
    """What a task asks for, ignoring the function name and the doctest example."""
    sentence = record["prompt"].split('"""')[1].split("\n")[0]
    return sentence + "\n" + record["canonical_solution"]


def function_splits(n_train: int, n_test: int, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """(train, test) task lists whose specifications are disjoint: no test task's solution, under any
    name or example, is in the training text. Test tasks have pairwise distinct specifications.

    The tasks come from a pool of 3 x (n_train + n_test) generated tasks; when the test specifications
    remove too many training tasks (at some seeds the first test specifications are common ones), the
    pool doubles, up to 4 times. `generate_functions` draws prefix-consistently, so a seed that had enough
    with the first pool gets the same split as before, and every seed's split is deterministic.
    """
    size = 3 * (n_train + n_test)
    for _ in range(5):
        train, test = _split_pool(generate_functions(size, seed), n_train, n_test)
        if len(test) == n_test and len(train) == n_train:
            return train, test
        size *= 2
    raise ValueError(f"could not draw {n_train} train / {n_test} test tasks with disjoint "
                     f"specifications (got {len(train)} / {len(test)}); ask for fewer")


def _split_pool(pool: list[dict], n_train: int, n_test: int) -> tuple[list[dict], list[dict]]:
    """The first n_test tasks of distinct specifications, and up to n_train of the rest whose
    specification is none of theirs."""
    test: list[dict] = []
    test_specs: set[str] = set()
    for t in pool:
        if len(test) == n_test:
            break
        if spec_key(t) not in test_specs:
            test_specs.add(spec_key(t))
            test.append(t)
    train = [t for t in pool if spec_key(t) not in test_specs][:n_train]
    return train, test


def check_solution(record: dict, completion: str | None = None) -> bool:
    """Run prompt + completion (default: the canonical solution) against the record's tests with a
    plain `exec`. For our own generated, trusted programs only; model outputs go to shared.eval's
    sandbox."""
    body = record["canonical_solution"] if completion is None else completion
    program = record["prompt"] + body + "\n" + record["test"] + f"\ncheck({record['entry_point']})\n"
    try:
        exec(compile(program, record["task_id"], "exec"), {"__name__": "generated_task"})
    except Exception:
        return False
    return True


def to_text(record: dict) -> str:
    """A training document: the prompt followed by the canonical solution."""
    return record["prompt"] + record["canonical_solution"]
