"""Code evaluation: run programs in the sandbox, HumanEval-style functional correctness and pass@k.

Public interface:
- ``run_program(source, timeout_s) -> ProgramResult`` with ``passed`` True only for a clean exit
  (code 0) within the time, plus ``exit_code``, ``timed_out``, ``stderr_tail``, ``reason``.
- ``run_programs(sources, timeout_s, workers)``: the same, several at once.
- ``humaneval_program(problem, completion)``: prompt + completion + test + ``check(entry_point)``.
- ``truncate_completion(text)``: cut a sampled completion at the Codex stop sequences.
- ``evaluate_completions(problems, completions, ks)``: run every completion, pass@k per Chen et al.
- ``sample_completions(model, tokenizer, problems, n, temperature)``: n samples per problem.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .generation import generate
from .passk import mean_pass_at_k
from .sandbox import ProgramResult, SandboxConfig, describe_isolation
from .sandbox import run as _sandbox_run

__all__ = ["ProgramResult", "SandboxConfig", "run_program", "run_programs", "humaneval_program",
           "truncate_completion", "evaluate_completions", "sample_completions", "STOP_SEQUENCES",
           "describe_isolation", "CodeEvalResult"]

# Chen et al. 2021 (Codex), section 3.3: stop at a new top-level def/class/if/print or comment.
STOP_SEQUENCES = ("\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#")


def run_program(source: str, timeout_s: float, config: SandboxConfig | None = None) -> ProgramResult:
    """Run `source` as a Python program in a fresh sandboxed interpreter (see shared.eval.sandbox)."""
    return _sandbox_run(source, timeout_s, config)


def _default_workers() -> int:
    return max(1, min(8, (os.cpu_count() or 2) * 2))


def run_programs(sources: Sequence[str], timeout_s: float, config: SandboxConfig | None = None,
                 workers: int | None = None) -> list[ProgramResult]:
    """run_program for each source, `workers` at a time (threads waiting on child processes)."""
    workers = workers or _default_workers()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda s: run_program(s, timeout_s, config), sources))


def truncate_completion(text: str, stop: Sequence[str] = STOP_SEQUENCES) -> str:
    """`text` up to the first stop sequence (the function body the model wrote, nothing after)."""
    cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=len(text))
    return text[:cut]


def humaneval_program(problem: Mapping[str, str], completion: str) -> str:
    """The program the HumanEval harness runs: prompt + completion, the tests, and the check call."""
    return (problem["prompt"] + completion + "\n\n" + problem["test"] + "\n\n"
            + f"check({problem['entry_point']})\n")


@dataclass
class CodeEvalResult:
    pass_at_k: dict[str, float]                              # {"pass@1": ..., "pass@10": ...}
    counts: dict[str, tuple[int, int]]                       # task_id -> (n samples, c correct)
    results: dict[str, list[ProgramResult]] = field(default_factory=dict)
    isolation: str = ""


def evaluate_completions(problems: Mapping[str, Mapping[str, str]], completions: Mapping[str, Sequence[str]],
                         ks: Sequence[int] = (1, 10, 100), timeout_s: float = 3.0,
                         config: SandboxConfig | None = None, workers: int | None = None,
                         truncate: bool = False) -> CodeEvalResult:
    """Execute every completion against its problem's tests; unbiased pass@k averaged over problems."""
    unknown = sorted(set(completions) - set(problems))
    if unknown:
        raise ValueError(f"completions for unknown task ids: {unknown[:5]}")
    if not completions:
        raise ValueError("no completions given")
    jobs = [(tid, c) for tid, cs in completions.items() for c in cs]
    sources = [humaneval_program(problems[tid], truncate_completion(c) if truncate else c) for tid, c in jobs]
    outcomes = run_programs(sources, timeout_s, config, workers)
    results: dict[str, list[ProgramResult]] = {tid: [] for tid in completions}
    for (tid, _), r in zip(jobs, outcomes):
        results[tid].append(r)
    counts = {tid: (len(rs), sum(r.passed for r in rs)) for tid, rs in results.items()}
    if any(n == 0 for n, _ in counts.values()):
        raise ValueError("every task needs at least one completion")
    return CodeEvalResult(pass_at_k=mean_pass_at_k(counts.values(), ks), counts=counts, results=results,
                          isolation=outcomes[0].isolation if outcomes else "")


def sample_completions(model, tokenizer, problems: Mapping[str, Mapping[str, str]], n: int,
                       temperature: float = 0.8, top_k: int | None = None, max_new_tokens: int = 256,
                       seed: int = 0, batch_size: int = 16, max_length: int | None = None
                       ) -> dict[str, list[str]]:
    """n completions per problem (greedy when temperature is 0), cut at the stop sequences."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    task_ids = list(problems)
    prompts = [problems[t]["prompt"] for t in task_ids for _ in range(n)]
    texts = generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens, temperature=temperature,
                     top_k=top_k, stop=STOP_SEQUENCES, batch_size=batch_size, seed=seed, max_length=max_length)
    return {t: texts[i * n:(i + 1) * n] for i, t in enumerate(task_ids)}
