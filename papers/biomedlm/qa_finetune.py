"""Finetuning a pretrained decoder for biomedical QA (BioMedLM's finetune/mc and finetune/textgen).

Multiple choice (MedMCQA, MedQA, PubMedQA). The paper puts a multiple-choice head on GPT-2 (a scalar
per [question; option] sequence, cross-entropy over the options). Our head is the LM itself: an
option's score is the summed log-likelihood of its text after a prompt, and `mc_loss` is the
cross-entropy of the softmax over the options' scores. Prompt styles (`STYLES`):
- "cloze": "[Context: <abstract>\n]Question: <question>\nAnswer:" and the option's text, the
  options not listed: each [question; option] sequence on its own, like the paper's head;
- "listed": shared.eval.multiple_choice's MMLU prompt, which lists lettered options first.
`evaluate_mc` scores the same way as training, so training and test agree.

Generation (patient questions; MeQSum in the paper): "Question: <q>\\nAnswer: <a><eos>", loss on the
answer's tokens only; `generate_answers` decodes greedily.

    history = run_training("papers.biomedlm.qa_finetune:finetune_main", QAFinetuneSpec(...).to_dict(), run_dir=...)
    model, tok = load_pretrained(run_dir)           # shared.pipelines.lm_pretrain
    evaluate_mc(model, tok, read_questions("medqa", "test.jsonl")).accuracy
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from papers.biomedlm.pretrain import train_config
from shared.data.formats import read_jsonl
from shared.eval import formats
from shared.eval._model_io import decode, encode, model_device
from shared.eval.formats import MCQuestion
from shared.eval.multiple_choice import MCResult, build_prompt, continuation_logprobs, continuations, score_questions
from shared.pipelines.finetune import encode_prompt_response
from shared.pipelines.lm_pretrain import load_pretrained, save_model_files
from shared.train import ResumableBatches, Trainer
from shared.train.distributed import init_distributed
from shared.train.lm import lm_loss
from shared.utils.config import StrictConfig

READERS = {"medmcqa": formats.read_medmcqa, "medqa": formats.read_medqa, "pubmedqa": formats.read_pubmedqa,
           "mmlu": formats.read_mmlu}
TASKS = ("mc", "textgen")
STYLES = ("cloze", "listed")
IGNORE = -100


def read_questions(fmt: str, path: str | Path) -> list[MCQuestion]:
    if fmt not in READERS:
        raise ValueError(f"unknown question format {fmt!r}; choose from {sorted(READERS)}")
    return READERS[fmt](path)


# ---------------------------------------------------------------------------------- multiple choice
def mc_prompt(q: MCQuestion, style: str = "cloze") -> str:
    """The prompt an option's text follows (see the module docstring)."""
    if style == "listed":
        return build_prompt(q)
    if style != "cloze":
        raise ValueError(f"prompt style must be one of {STYLES}, got {style!r}")
    return (f"Context: {q.context}\n" if q.context else "") + f"Question: {q.question.strip()}\nAnswer:"


def encode_mc(questions: Sequence[MCQuestion], tokenizer, max_len: int, pad_id: int = 0,
              style: str = "cloze") -> dict[str, torch.Tensor]:
    """Tensors for `mc_loss`, N questions with C options each (all the same C):
    input_ids, targets (N, C, L) int64 (targets[t] is the token after input_ids[t], IGNORE off the
    option's text), lengths (N, C), labels (N,). A [prompt; option] sequence longer than max_len tokens
    loses prompt tokens on the left, as in shared.eval.multiple_choice.continuation_logprobs."""
    if not questions:
        raise ValueError("no questions")
    n_choices = {len(q.choices) for q in questions}
    if len(n_choices) != 1:
        raise ValueError(f"questions must all have the same number of options, got {sorted(n_choices)}")
    if any(q.answer is None for q in questions):
        raise ValueError("every training question needs an answer")
    rows = []
    for q in questions:
        ctx = encode(tokenizer, mc_prompt(q, style))
        for cont in continuations(q, "text"):
            c = encode(tokenizer, cont)
            seq = (ctx + c)[-max_len:]
            if len(c) >= len(seq):
                raise ValueError(f"option {cont!r} does not fit max_len={max_len}")
            rows.append((seq, len(c)))
    width = max(len(s) for s, _ in rows) - 1
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    tgt = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    lengths = torch.zeros(len(rows), dtype=torch.long)
    for i, (seq, n_cont) in enumerate(rows):
        seq_t = torch.as_tensor(seq)
        ids[i, :len(seq) - 1] = seq_t[:-1]
        tgt[i, len(seq) - 1 - n_cont:len(seq) - 1] = seq_t[-n_cont:]
        lengths[i] = len(seq) - 1
    c = n_choices.pop()
    return {"input_ids": ids.view(len(questions), c, width), "targets": tgt.view(len(questions), c, width),
            "lengths": lengths.view(len(questions), c), "labels": torch.tensor([q.answer for q in questions])}


def option_scores(model, input_ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B, C, L) ids and targets -> (B, C) summed log-likelihood of each option's target tokens."""
    b, c, length = input_ids.shape
    logits = model(input_ids.reshape(b * c, length)).logits.float()           # (B*C, L, V)
    flat_t = targets.reshape(b * c, length)
    logp = -F.cross_entropy(logits.transpose(1, 2), flat_t.clamp_min(0), reduction="none")   # (B*C, L)
    return (logp * (flat_t != IGNORE)).sum(-1).view(b, c)


def mc_loss(model, batch: dict[str, torch.Tensor]):
    """Cross-entropy over the options' summed log-likelihoods (the LM as a multiple-choice head).
    Pads beyond the batch's longest row are trimmed first."""
    width = int(batch["lengths"].max())
    scores = option_scores(model, batch["input_ids"][..., :width], batch["targets"][..., :width])
    loss = F.cross_entropy(scores, batch["labels"])
    acc = (scores.argmax(-1) == batch["labels"]).float().mean()
    return loss, {"accuracy": acc.detach(), "num_samples": int(scores.shape[0]),
                  "num_tokens": int(batch["lengths"].sum())}


def evaluate_mc(model, tokenizer, questions: Sequence[MCQuestion], style: str = "cloze",
                batch_size: int = 32, max_length: int | None = None) -> MCResult:
    """Accuracy of the argmax of the options' summed log-likelihood (and of the per-token mean) after
    the `style` prompt; "listed" is shared.eval.multiple_choice.score_questions with the options' text."""
    if style == "listed":
        return score_questions(model, tokenizer, questions, continuation="text", batch_size=batch_size,
                               max_length=max_length)
    questions = [q for q in questions if q.answer is not None]
    if not questions:
        raise ValueError("no labelled questions to score")
    pairs, owners = [], []
    for i, q in enumerate(questions):
        ctx = encode(tokenizer, mc_prompt(q, style))
        for cont in continuations(q, "text"):
            pairs.append((ctx, encode(tokenizer, cont)))
            owners.append(i)
    was_training = model.training
    model.eval()
    try:
        lls = continuation_logprobs(model, pairs, batch_size=batch_size, max_length=max_length,
                                    pad_id=getattr(tokenizer, "eos_token_id", None) or 0)
    finally:
        model.train(was_training)
    scores: list[list[float]] = [[] for _ in questions]
    norm: list[list[float]] = [[] for _ in questions]
    for i, (s, n) in zip(owners, lls):
        scores[i].append(s)
        norm[i].append(s / n)
    pred = [max(range(len(s)), key=s.__getitem__) for s in scores]
    pred_norm = [max(range(len(s)), key=s.__getitem__) for s in norm]
    by_subject: dict[str, dict[str, float]] = {}
    for subject in sorted({q.subject or "" for q in questions}):
        ix = [i for i, q in enumerate(questions) if (q.subject or "") == subject]
        by_subject[subject] = {"accuracy": sum(pred[i] == questions[i].answer for i in ix) / len(ix),
                               "accuracy_norm": sum(pred_norm[i] == questions[i].answer for i in ix) / len(ix),
                               "n": len(ix)}
    hits = [p == q.answer for p, q in zip(pred, questions)]
    hits_norm = [p == q.answer for p, q in zip(pred_norm, questions)]
    return MCResult(accuracy=sum(hits) / len(hits), accuracy_norm=sum(hits_norm) / len(hits_norm),
                    n=len(questions), by_subject=by_subject, predictions=pred, predictions_norm=pred_norm,
                    scores=scores, scores_norm=norm)


# ------------------------------------------------------------------------------------- generation
def qa_prompt(question: str) -> str:
    return f"Question: {question}\nAnswer:"


def encode_textgen(pairs: Sequence[dict], tokenizer, max_len: int) -> dict[str, torch.Tensor]:
    """{"question", "answer"} pairs -> input_ids, targets (N, L) and loss_mask (N, L) (answer + eos only):
    "Question: <q>\nAnswer: <a><eos>" cut to its last max_len tokens, eos-padded
    (shared.pipelines.finetune.encode_prompt_response)."""
    return encode_prompt_response(tokenizer, [(qa_prompt(p["question"]), " " + p["answer"]) for p in pairs], max_len,
                                  keep="end", pad_id=tokenizer.eos_token_id)


@torch.no_grad()
def generate_answers(model, tokenizer, questions: Sequence[str], max_new_tokens: int = 24) -> list[str]:
    """Greedy answers to questions, each prompted alone (no padding), stopping at end-of-text."""
    out = []
    for q in questions:
        ids = torch.tensor([encode(tokenizer, qa_prompt(q))], device=model_device(model))
        gen = model.generate(ids, max_new_tokens, temperature=0.0, eos_id=tokenizer.eos_token_id)
        out.append(decode(tokenizer, gen[0, ids.shape[1]:].tolist()).strip())
    return out


# ------------------------------------------------------------------------------------- entry point
@dataclass
class QAFinetuneSpec(StrictConfig):
    """What `finetune_main` needs. init: a pretrain run_dir (its latest checkpoint is loaded).
    task "mc": train_file in `fmt` (a READERS key), prompts in `style`; "textgen": jsonl of
    {"question", "answer"}."""
    init: str
    task: str
    train_file: str
    train: dict[str, Any]
    fmt: str | None = None
    style: str = "cloze"
    max_len: int = 128
    seed: int = 0
    max_examples: int | None = None

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.task == "mc" and self.fmt not in READERS:
            raise ValueError(f"task 'mc' needs fmt in {sorted(READERS)}, got {self.fmt!r}")
        if self.style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, got {self.style!r}")


def finetune_main(config: dict[str, Any], run_dir: str) -> None:
    """Entry point for shared.train.run_training: load the pretrained model and finetune it."""
    spec = QAFinetuneSpec.from_dict(config)
    dist = init_distributed(spec.train.get("device"))
    model, tok = load_pretrained(spec.init)
    model.train()
    if spec.task == "mc":
        examples = read_questions(spec.fmt, spec.train_file)[:spec.max_examples]
        data, loss_fn = encode_mc(examples, tok, spec.max_len, pad_id=tok.eos_token_id, style=spec.style), mc_loss
    else:
        examples = list(read_jsonl(spec.train_file))[:spec.max_examples]
        data, loss_fn = encode_textgen(examples, tok, spec.max_len), lm_loss
    cfg = train_config(spec.train, run_dir, spec.seed)
    batches = ResumableBatches(data, cfg.micro_batch_size, rank=dist.rank, world_size=dist.world_size, seed=spec.seed)
    if dist.rank == 0:
        save_model_files(run_dir, model, tok)
    Trainer(model, loss_fn, batches, cfg).fit()
