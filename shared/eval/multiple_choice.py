"""Multiple choice by answer log-likelihood (MMLU, MedMCQA, MedQA, PubMedQA).

Prompt (zero-shot, optional few-shot examples before it):

    [Context: <abstract>\n]
    <question>
    A. <choice>
    B. <choice>
    ...
    Answer:

Each choice is scored by the log-likelihood of a continuation after the prompt: the letter
(" A", as in MMLU's original evaluation) or the choice text (" <choice>", cloze style). Both the sum
over the continuation's tokens and the per-token mean (length-normalised) are reported, with the
accuracy of picking the argmax of each. Context and continuation are tokenised separately and
concatenated, so the scored tokens are exactly the continuation's.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from ._model_io import encode, logits_of, model_device, model_max_length
from .formats import LETTERS, MCQuestion

CONTINUATIONS = ("letter", "text")


def format_question(q: MCQuestion, with_answer: bool = False) -> str:
    """The prompt for one question, ending in 'Answer:' (and ' <letter>' when `with_answer`)."""
    lines = [f"Context: {q.context}"] if q.context else []
    lines.append(q.question.strip())
    lines += [f"{LETTERS[i]}. {c}" for i, c in enumerate(q.choices)]
    lines.append("Answer:" + (f" {LETTERS[q.answer]}" if with_answer and q.answer is not None else ""))
    return "\n".join(lines)


def build_prompt(q: MCQuestion, fewshot: Sequence[MCQuestion] = ()) -> str:
    shots = [format_question(s, with_answer=True) + "\n\n" for s in fewshot]
    return "".join(shots) + format_question(q)


def continuations(q: MCQuestion, style: str = "letter") -> list[str]:
    if style not in CONTINUATIONS:
        raise ValueError(f"continuation style must be one of {CONTINUATIONS}, got {style!r}")
    return [f" {LETTERS[i]}" if style == "letter" else f" {c}" for i, c in enumerate(q.choices)]


@torch.no_grad()
def continuation_logprobs(model, pairs: Sequence[tuple[list[int], list[int]]], batch_size: int = 16,
                          max_length: int | None = None, pad_id: int = 0) -> list[tuple[float, int]]:
    """For (context_ids, continuation_ids) pairs: (sum of log p(continuation | context), #tokens).

    Sequences longer than `max_length` (default: the model's context length) lose tokens from the
    left of the context. Batches are right-padded; a causal model never looks at the padding.
    """
    max_length = max_length or model_max_length(model)
    device = model_device(model)
    rows = []
    for ctx, cont in pairs:
        if not cont:
            raise ValueError("empty continuation")
        if not ctx:
            raise ValueError("empty context: the first continuation token needs a position before it")
        seq = list(ctx) + list(cont)
        if max_length is not None and len(seq) > max_length:
            if len(cont) >= max_length:
                raise ValueError(f"continuation of {len(cont)} tokens does not fit max_length={max_length}")
            seq = seq[-max_length:]
        rows.append((seq, len(cont)))
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i][0]))  # similar lengths together
    out: list[tuple[float, int]] = [(0.0, 0)] * len(rows)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        width = max(len(rows[i][0]) for i in idx)
        ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
        for j, i in enumerate(idx):
            ids[j, :len(rows[i][0])] = torch.as_tensor(rows[i][0])
        logp = torch.log_softmax(logits_of(model(ids.to(device))).float(), dim=-1)   # (B, T, V)
        for j, i in enumerate(idx):
            seq, n_cont = rows[i]
            t = len(seq)
            targets = torch.as_tensor(seq[t - n_cont:], device=device)
            # logits at position p predict token p + 1
            lp = logp[j, t - n_cont - 1:t - 1].gather(-1, targets[:, None]).squeeze(-1)
            out[i] = (float(lp.sum()), n_cont)
    return out


@dataclass
class MCResult:
    accuracy: float                 # argmax of summed log-likelihood
    accuracy_norm: float            # argmax of per-token mean log-likelihood
    n: int
    by_subject: dict[str, dict[str, float]] = field(default_factory=dict)
    predictions: list[int] = field(default_factory=list)
    predictions_norm: list[int] = field(default_factory=list)
    scores: list[list[float]] = field(default_factory=list)         # summed log-likelihood per choice
    scores_norm: list[list[float]] = field(default_factory=list)


def score_questions(model, tokenizer, questions: Sequence[MCQuestion], fewshot: Sequence[MCQuestion] = (),
                    continuation: str = "letter", batch_size: int = 16, max_length: int | None = None,
                    model_eval: bool = True) -> MCResult:
    """Score every choice of every labelled question; accuracy by summed and by normalised log-likelihood."""
    questions = [q for q in questions if q.answer is not None]
    if not questions:
        raise ValueError("no labelled questions to score")
    pairs, owners = [], []
    for qi, q in enumerate(questions):
        ctx = encode(tokenizer, build_prompt(q, fewshot))
        for cont in continuations(q, continuation):
            pairs.append((ctx, encode(tokenizer, cont)))
            owners.append(qi)
    was_training = getattr(model, "training", False)
    if model_eval and hasattr(model, "eval"):
        model.eval()
    try:
        lls = continuation_logprobs(model, pairs, batch_size=batch_size, max_length=max_length)
    finally:
        if model_eval and was_training:
            model.train()
    scores = [[] for _ in questions]
    scores_norm = [[] for _ in questions]
    for qi, (s, n) in zip(owners, lls):
        scores[qi].append(s)
        scores_norm[qi].append(s / n)
    pred = [max(range(len(s)), key=s.__getitem__) for s in scores]
    pred_norm = [max(range(len(s)), key=s.__getitem__) for s in scores_norm]
    hits = [p == q.answer for p, q in zip(pred, questions)]
    hits_norm = [p == q.answer for p, q in zip(pred_norm, questions)]
    groups = defaultdict(list)
    for i, q in enumerate(questions):
        groups[q.subject or ""].append(i)
    by_subject = {s: {"accuracy": sum(hits[i] for i in ix) / len(ix),
                      "accuracy_norm": sum(hits_norm[i] for i in ix) / len(ix), "n": len(ix)}
                  for s, ix in sorted(groups.items())}
    return MCResult(accuracy=sum(hits) / len(hits), accuracy_norm=sum(hits_norm) / len(hits_norm),
                    n=len(questions), by_subject=by_subject, predictions=pred, predictions_norm=pred_norm,
                    scores=scores, scores_norm=scores_norm)
