"""Text generation and exact-match scoring (GSM8K format).

``generate`` continues prompts greedily (temperature 0) or by sampling. It uses ``model.generate``
when the model has one that takes ``(input_ids, max_new_tokens=..., temperature=...)`` (our GPT,
with its KV cache) or is a transformers model; otherwise a plain loop here that reruns the model on
the whole sequence each step. Prompts are batched only with prompts of the same token length, so no
padding (which a plain causal model would attend to) is ever needed.

GSM8K: ``evaluate_gsm8k`` generates greedily and scores the final numbers by exact match
(``shared.eval.answers``: normalize_number, extract_answer, exact_match, re-exported here).
Sampling is ``shared.models.gpt_generate.sample_next``, the one token sampler of the repo.
"""
from __future__ import annotations

import inspect
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from shared.eval._model_io import decode, encode, eos_id, logits_of, model_device, model_max_length
from shared.eval.answers import exact_match, extract_answer, normalize_number
from shared.eval.formats import MathProblem
from shared.models.gpt_generate import sample_next

__all__ = ["ExactMatchResult", "GSM8K_STOP", "evaluate_gsm8k", "exact_match", "extract_answer", "generate",
           "gsm8k_prompt", "normalize_number", "truncate_at_stop"]


@torch.no_grad()
def _loop_generate(model, ids: torch.Tensor, max_new_tokens: int, temperature: float, top_k: int | None,
                   generator: torch.Generator | None, max_length: int | None) -> torch.Tensor:
    """(B, T) -> (B, T + max_new_tokens) by rerunning the model on the (cropped) sequence each step."""
    for _ in range(max_new_tokens):
        window = ids if max_length is None else ids[:, -max_length:]
        nxt = sample_next(logits_of(model(window))[:, -1], temperature, top_k, generator)
        ids = torch.cat([ids, nxt[:, None]], dim=1)
    return ids


def _native_generate(model):
    """'hf', 'ours' or None: which of the model's own generate methods can be called."""
    gen = getattr(model, "generate", None)
    if gen is None or not callable(gen):
        return None
    transformers = sys.modules.get("transformers")  # a transformers model implies it is imported
    if transformers is not None and isinstance(model, transformers.GenerationMixin):
        return "hf"
    params = inspect.signature(gen).parameters
    return "ours" if {"max_new_tokens", "temperature"} <= set(params) else None


@torch.no_grad()
def _generate_batch(model, ids: torch.Tensor, max_new_tokens: int, temperature: float, top_k: int | None,
                    generator: torch.Generator | None, max_length: int | None, eos: int | None) -> torch.Tensor:
    kind = _native_generate(model)
    if kind == "ours":
        kwargs = {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_k": top_k}
        params = inspect.signature(model.generate).parameters
        if "eos_id" in params:
            kwargs["eos_id"] = eos
        if "generator" in params:
            kwargs["generator"] = generator
        return model.generate(ids, **kwargs)
    if kind == "hf":
        kwargs = {"max_new_tokens": max_new_tokens, "do_sample": temperature > 0,
                  "attention_mask": torch.ones_like(ids), "pad_token_id": eos if eos is not None else 0}
        if temperature > 0:
            kwargs.update(temperature=temperature, top_k=top_k or 0)
        return model.generate(ids, **kwargs)
    return _loop_generate(model, ids, max_new_tokens, temperature, top_k, generator, max_length)


def truncate_at_stop(text: str, stop: Sequence[str]) -> str:
    """`text` up to the earliest occurrence of any stop string."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=len(text))
    return text[:cut]


@torch.no_grad()
def generate(model, tokenizer, prompts: Sequence[str], max_new_tokens: int = 128, temperature: float = 0.0,
             top_k: int | None = None, stop: Sequence[str] = (), batch_size: int = 16, seed: int | None = None,
             max_length: int | None = None) -> list[str]:
    """Continuations (text after each prompt, cut at the first stop string or EOS)."""
    if temperature < 0 or max_new_tokens < 1:
        raise ValueError(f"need temperature >= 0 and max_new_tokens >= 1, got {temperature}, {max_new_tokens}")
    device = model_device(model)
    max_length = max_length or model_max_length(model)
    eos = eos_id(tokenizer)
    generator = None
    if seed is not None:
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
    encoded = [encode(tokenizer, p) for p in prompts]
    if any(not e for e in encoded):
        raise ValueError("every prompt must encode to at least one token")
    if max_length is not None:  # leave room for the new tokens (a model with fixed positions needs it)
        keep = max(1, max_length - max_new_tokens)
        encoded = [e[-keep:] for e in encoded]
    by_len = defaultdict(list)
    for i, e in enumerate(encoded):
        by_len[len(e)].append(i)
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    out: list[str] = [""] * len(prompts)
    try:
        for length, idx in sorted(by_len.items()):
            for s in range(0, len(idx), batch_size):
                chunk = idx[s:s + batch_size]
                ids = torch.tensor([encoded[i] for i in chunk], dtype=torch.long, device=device)
                full = _generate_batch(model, ids, max_new_tokens, temperature, top_k, generator, max_length, eos)
                for row, i in zip(full[:, length:].tolist(), chunk):
                    if eos is not None and eos in row:
                        row = row[:row.index(eos)]
                    out[i] = truncate_at_stop(decode(tokenizer, row), stop)
    finally:
        if was_training and hasattr(model, "train"):
            model.train()
    return out


# ---- GSM8K exact match -------------------------------------------------------------------------

def gsm8k_prompt(problem: MathProblem, fewshot: Sequence[MathProblem] = ()) -> str:
    shots = "".join(f"Question: {p.question}\nAnswer: {p.solution}\n\n" for p in fewshot)
    return f"{shots}Question: {problem.question}\nAnswer:"


@dataclass
class ExactMatchResult:
    accuracy: float
    n: int
    predictions: list[str | None] = field(default_factory=list)
    completions: list[str] = field(default_factory=list)


GSM8K_STOP = ("\n\nQuestion:", "\nQuestion:", "\n\n")


def evaluate_gsm8k(model, tokenizer, problems: Sequence[MathProblem], fewshot: Sequence[MathProblem] = (),
                   max_new_tokens: int = 128, stop: Sequence[str] = GSM8K_STOP, batch_size: int = 16,
                   max_length: int | None = None) -> ExactMatchResult:
    """Greedy generation + final-number extraction + exact match."""
    if not problems:
        raise ValueError("no problems given")
    prompts = [gsm8k_prompt(p, fewshot) for p in problems]
    completions = generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens, temperature=0.0,
                           stop=stop, batch_size=batch_size, max_length=max_length)
    preds = [extract_answer(c) for c in completions]
    hits = [exact_match(p, prob.answer) for p, prob in zip(preds, problems)]
    return ExactMatchResult(accuracy=sum(hits) / len(hits), n=len(hits), predictions=preds,
                            completions=completions)
