"""Finetuning a pretrained decoder for biomedical QA (BioMedLM's finetune/mc and finetune/textgen).

Multiple choice (MedMCQA, MedQA, PubMedQA, BioASQ, MMLU). The paper puts a multiple-choice head on
GPT-2 (a scalar per [question; option] sequence, cross-entropy over the options). Our head is the LM itself: an
option's score is the summed log-likelihood of its text after a prompt, and `mc_loss` is the
cross-entropy of the softmax over the options' scores. Prompt styles (`STYLES`):
- "cloze": "[Context: <abstract>\n]Question: <question>\nAnswer:" and the option's text, the
  options not listed: each [question; option] sequence on its own, like the paper's head;
- "listed": shared.eval.multiple_choice's MMLU prompt, which lists lettered options first.
`evaluate_mc` scores the same way as training, so training and test agree.
Heads (`HEADS`): "lm" (above) or "classifier", the paper's: a linear layer on the hidden state at the
end of each [prompt; option] sequence, one scalar per option. With tied embeddings that layer is the
raw logit of the end-of-text token at the last position (its embedding row is the trained weight
vector; end-of-text appears in these inputs only as right padding, which a causal model never reads).

Generation (patient questions; MeQSum in the paper): "Question: <q>\\nAnswer: <a><eos>", loss on the
answer's tokens only; `generate_answers` decodes greedily.

Decoders (`load_decoder`): a run folder of ours (a 02_pretrain run or a finetuning run of one:
`model.json`, checkpoints, `tokenizer/`), or a transformers checkpoint folder (e.g. GPT-Neo 2.7B, the
paper's general baseline, with its GPT-2 tokenizer), loaded in fp32 whatever its stored dtype (the
master weights of full finetuning). A finetuning run of a transformers model keeps its config and
tokenizer in `<run_dir>/hf/` and its weights in the checkpoints; `load_decoder(run_dir)` reads both.
Heads, prompts, losses and evaluation are the same for both kinds of model.

Length of a run: `train["max_steps"]`, or `train["epochs"]` passes over the training examples
(full scale, as the paper's code sets `--num_train_epochs`); `train["per_fmt"]` overrides keys for
one question format (`fmt`), so each benchmark has its own recipe (`finetune_train`).

    history = run_training("papers.biomedlm.qa_finetune:finetune_main", QAFinetuneSpec(...).to_dict(), run_dir=...)
    model, tok = load_decoder(run_dir)              # ours or a transformers model, finetuned
    evaluate_mc(model, tok, read_questions("medqa", "test.jsonl")).accuracy
"""
from __future__ import annotations

import csv
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from papers.biomedlm.pretrain import train_config
from shared.data.formats import read_jsonl, write_jsonl
from shared.eval import formats
from shared.eval._model_io import decode, encode, model_device, model_max_length
from shared.eval.formats import MCQuestion
from shared.eval.multiple_choice import MCResult, build_prompt, continuation_logprobs, continuations, score_questions
from shared.models.gpt import GPT
from shared.pipelines.finetune import encode_prompt_response
from shared.pipelines.lm_pretrain import load_pretrained, save_model_files
from shared.train import ResumableBatches, Trainer
from shared.train.checkpoint import latest_checkpoint, load_model_weights
from shared.train.distributed import init_distributed
from shared.train.lm import hf_lm_loss, lm_loss
from shared.train.model_files import MODEL_FILE, load_transformers_lm
from shared.utils.config import StrictConfig

BIOASQ_CHOICES = ("yes", "no")


def read_bioasq(path: str | Path) -> list[MCQuestion]:
    """BioASQ yes/no questions as two-option questions with their passage as context: the BLURB /
    stanford-crfm/BioMedLM `finetune/seqcls` jsonl layout ({"id", "sentence1": question,
    "sentence2": passage, "label": "yes" | "no"}) or {"question", "context", "answer"} rows."""
    out = []
    for r in read_jsonl(path):
        question = r.get("sentence1", r.get("question"))
        context = r.get("sentence2", r.get("context"))
        label = r.get("label", r.get("answer"))
        if question is None or context is None:
            raise ValueError(f"{path}: not a BioASQ row: fields {sorted(r)}")
        answer = None if label in (None, "") else BIOASQ_CHOICES.index(str(label).strip().lower())
        out.append(MCQuestion(question, BIOASQ_CHOICES, answer, context=context, id=r.get("id")))
    return out


def write_mc_jsonl(questions: Sequence[MCQuestion], path: str | Path) -> Path:
    """Questions as MMLU jsonl rows ({"question", "choices", "answer", "subject"}; read back by
    `formats.read_mmlu`). The paper's MMLU model trains on MedMCQA + MedQA (its Sec. 3.4):
        write_mc_jsonl(read_medmcqa(".../medmcqa/train.jsonl") + read_medqa(".../medqa/train.jsonl"),
                       data_dir / "mmlu" / "train_medmcqa_medqa.jsonl")"""
    write_jsonl(path, [{"question": q.question, "choices": list(q.choices), "answer": q.answer,
                        "subject": q.subject} for q in questions])
    return Path(path)


def write_bioasq_jsonl(questions: Sequence[MCQuestion], path: str | Path) -> Path:
    """The yes / no questions among `questions` (answer "yes" or "no", with a context) as BioASQ rows of
    the repo's seqcls layout ({"id", "sentence1": question, "sentence2": passage, "label"}; read back by
    `read_bioasq`); e.g. PubMedQA-format questions without their "maybe" ones."""
    rows = [{"id": q.id, "sentence1": q.question, "sentence2": q.context, "label": q.choices[q.answer]}
            for q in questions if q.answer is not None and q.context and q.choices[q.answer] in BIOASQ_CHOICES]
    if not rows:
        raise ValueError("no yes / no question with a context to write")
    write_jsonl(path, rows)
    return Path(path)


def write_mmlu_csv(questions: Sequence[MCQuestion], path: str | Path) -> Path:
    """Four-option questions as one of MMLU's original CSV files (no header; question, A, B, C, D, answer
    letter; the subject is the file name's: `<subject>_test.csv`), read back by `formats.read_mmlu`."""
    if any(len(q.choices) != 4 or q.answer is None for q in questions):
        raise ValueError("MMLU rows need four options and an answer")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([q.question, *q.choices, "ABCD"[q.answer]] for q in questions)
    return path


READERS = {"medmcqa": formats.read_medmcqa, "medqa": formats.read_medqa, "pubmedqa": formats.read_pubmedqa,
           "mmlu": formats.read_mmlu, "bioasq": read_bioasq}
TASKS = ("mc", "textgen", "summarization")
# the repo's finetune/textgen/gpt2/finetune_for_summarization.py defaults: tokens kept of a source and of a target
SUMMARY_MAX_SOURCE = SUMMARY_MAX_TARGET = 510
ROUGE_KEYS = ("rouge1", "rouge2", "rougeL")     # run_generation_batch.py calculate_rouge
STYLES = ("cloze", "listed")
HEADS = ("lm", "classifier")
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
              style: str = "cloze", head: str = "lm") -> dict[str, torch.Tensor]:
    """Tensors for `mc_loss`, N questions with C options each (all the same C):
    input_ids, targets (N, C, L) int64 (targets[t] is the token after input_ids[t], IGNORE off the
    option's text), lengths (N, C), labels (N,). A [prompt; option] sequence longer than max_len tokens
    loses prompt tokens on the left, as in shared.eval.multiple_choice.continuation_logprobs.
    head "classifier": input_ids hold the whole sequence and targets mark only its last position,
    with the end-of-text id (`option_scores` reads that logit)."""
    if head == "classifier":
        return _encode_classifier(questions, tokenizer, max_len, pad_id, style)
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


def _encode_classifier(questions: Sequence[MCQuestion], tokenizer, max_len: int, pad_id: int,
                       style: str) -> dict[str, torch.Tensor]:
    """encode_mc for the classifier head: each [prompt; option] sequence (cut on the left to max_len)
    right-padded, targets IGNORE but the last position (end-of-text id), lengths = sequence lengths."""
    if not questions:
        raise ValueError("no questions")
    if len({len(q.choices) for q in questions}) != 1:
        raise ValueError("questions must all have the same number of options")
    if any(q.answer is None for q in questions):
        raise ValueError("every question needs an answer")
    end_id = tokenizer.eos_token_id
    rows = [(encode(tokenizer, mc_prompt(q, style)) + encode(tokenizer, cont))[-max_len:]
            for q in questions for cont in continuations(q, "text")]
    ids = torch.full((len(rows), max(map(len, rows))), pad_id, dtype=torch.long)
    tgt = torch.full_like(ids, IGNORE)
    for i, seq in enumerate(rows):
        ids[i, :len(seq)] = torch.as_tensor(seq)
        tgt[i, len(seq) - 1] = end_id
    n, c = len(questions), len(questions[0].choices)
    labels = torch.tensor([q.answer for q in questions])
    return {"input_ids": ids.view(n, c, -1), "targets": tgt.view(n, c, -1),
            "lengths": torch.tensor([len(r) for r in rows]).view(n, c), "labels": labels}


def option_scores(model, input_ids: torch.Tensor, targets: torch.Tensor, head: str = "lm") -> torch.Tensor:
    """(B, C, L) ids and targets -> (B, C) summed log-likelihood of each option's target tokens
    ("lm"), or the raw logit of the marked target ("classifier": a linear layer on the last hidden
    state)."""
    b, c, length = input_ids.shape
    logits = model(input_ids.reshape(b * c, length)).logits.float()           # (B*C, L, V)
    flat_t = targets.reshape(b * c, length)
    if head == "classifier":
        picked = logits.gather(-1, flat_t.clamp_min(0).unsqueeze(-1)).squeeze(-1)          # (B*C, L)
        return (picked * (flat_t != IGNORE)).sum(-1).view(b, c)
    logp = -F.cross_entropy(logits.transpose(1, 2), flat_t.clamp_min(0), reduction="none")   # (B*C, L)
    return (logp * (flat_t != IGNORE)).sum(-1).view(b, c)


def mc_loss(model, batch: dict[str, torch.Tensor], head: str = "lm"):
    """Cross-entropy over the options' scores (`option_scores` of `head`). Pads beyond the batch's
    longest row are trimmed first."""
    width = int(batch["lengths"].max())
    scores = option_scores(model, batch["input_ids"][..., :width], batch["targets"][..., :width], head)
    loss = F.cross_entropy(scores, batch["labels"])
    acc = (scores.argmax(-1) == batch["labels"]).float().mean()
    return loss, {"accuracy": acc.detach(), "num_samples": int(scores.shape[0]),
                  "num_tokens": int(batch["lengths"].sum())}


def evaluate_mc(model, tokenizer, questions: Sequence[MCQuestion], style: str = "cloze",
                batch_size: int = 32, max_length: int | None = None, head: str = "lm") -> MCResult:
    """Accuracy of the argmax of the options' summed log-likelihood (and of the per-token mean) after
    the `style` prompt; "listed" is shared.eval.multiple_choice.score_questions with the options' text.
    head "classifier": the argmax of the classifier scores (accuracy_norm is the same)."""
    if head == "classifier":
        return _evaluate_classifier(model, tokenizer, questions, style, batch_size, max_length)
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


@torch.no_grad()
def _evaluate_classifier(model, tokenizer, questions, style, batch_size, max_length) -> MCResult:
    questions = [q for q in questions if q.answer is not None]
    if not questions:
        raise ValueError("no labelled questions to score")
    max_length = max_length or model_max_length(model)
    was_training = model.training
    model.eval()
    scores: list[list[float]] = []
    dev = model_device(model)
    try:
        for i in range(0, len(questions), batch_size):
            b = _encode_classifier(questions[i:i + batch_size], tokenizer, max_length, tokenizer.eos_token_id, style)
            scores += option_scores(model, b["input_ids"].to(dev), b["targets"].to(dev), "classifier").tolist()
    finally:
        model.train(was_training)
    pred = [max(range(len(s)), key=s.__getitem__) for s in scores]
    acc = sum(p == q.answer for p, q in zip(pred, questions)) / len(questions)
    return MCResult(accuracy=acc, accuracy_norm=acc, n=len(questions), by_subject={}, predictions=pred,
                    predictions_norm=pred, scores=scores, scores_norm=scores)


# ------------------------------------------------------------------------------------- generation
def qa_prompt(question: str) -> str:
    return f"Question: {question}\nAnswer:"


def encode_textgen(pairs: Sequence[dict], tokenizer, max_len: int) -> dict[str, torch.Tensor]:
    """{"question", "answer"} pairs -> input_ids, targets (N, L) and loss_mask (N, L) (answer + eos only):
    "Question: <q>\nAnswer: <a><eos>" cut to its last max_len tokens, eos-padded
    (shared.pipelines.finetune.encode_prompt_response)."""
    return encode_prompt_response(tokenizer, [(qa_prompt(p["question"]), " " + p["answer"]) for p in pairs], max_len,
                                  keep="end", pad_id=tokenizer.eos_token_id)


def generate_answers(model, tokenizer, questions: Sequence[str], max_new_tokens: int = 24) -> list[str]:
    """Greedy answers to questions ("Question: <q>\nAnswer:")."""
    return greedy_continuations(model, tokenizer, [encode(tokenizer, qa_prompt(q)) for q in questions],
                                max_new_tokens)


# MeQSum as the repo finetunes it (finetune/textgen): each line of <split>.source summarised by the same line
# of <split>.target; a row is source, separator, target, end-of-text, the loss on the target and its end.
def read_source_target(path: str | Path) -> list[dict[str, str]]:
    """{"source", "target"} pairs of the repo's line files: ``path`` (<split>.source) and the <split>.target
    beside it, one example per line (blank lines skipped, as the repo's dataset reads them)."""
    path = Path(path)
    if path.suffix != ".source":
        raise ValueError(f"{path}: a summarization file is <split>.source, with <split>.target beside it")
    lines = {p: [x for x in p.read_text(encoding="utf-8").splitlines() if x.strip()]
             for p in (path, path.with_suffix(".target"))}
    sources, targets = lines[path], lines[path.with_suffix(".target")]
    if len(sources) != len(targets):
        raise ValueError(f"{path}: {len(sources)} sources but {len(targets)} targets")
    return [{"source": s, "target": t} for s, t in zip(sources, targets)]


def summary_prompt_ids(tokenizer, source: str) -> list[int]:
    """The first SUMMARY_MAX_SOURCE tokens of ``source`` and the separator. The repo's separator is
    ``<|startoftext|>``, a token it adds to GPT-2's vocabulary; ours is the tokenizer's end-of-text token,
    which every decoder here already embeds (no new embedding row)."""
    return encode(tokenizer, source)[:SUMMARY_MAX_SOURCE] + [tokenizer.eos_token_id]


def encode_summaries(pairs: Sequence[dict], tokenizer) -> dict[str, torch.Tensor]:
    """{"source", "target"} pairs -> input_ids, targets (N, L) int64 and loss_mask (N, L) bool, True on the
    target's tokens and its end-of-text (at most SUMMARY_MAX_TARGET + 1); rows end-of-text-padded.
    targets[:, t] is the token after input_ids[:, t]."""
    if not pairs:
        raise ValueError("no (source, target) pairs given")
    eos = tokenizer.eos_token_id
    rows, starts = [], []
    for p in pairs:
        prompt = summary_prompt_ids(tokenizer, p["source"])
        rows.append(prompt + encode(tokenizer, p["target"])[:SUMMARY_MAX_TARGET] + [eos])
        starts.append(len(prompt))
    width = max(len(r) for r in rows) - 1
    ids = torch.full((len(rows), width), eos, dtype=torch.long)
    tgt = torch.full((len(rows), width), eos, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, (row, start) in enumerate(zip(rows, starts)):
        row_t, n = torch.tensor(row), len(row) - 1
        ids[i, :n], tgt[i, :n] = row_t[:-1], row_t[1:]
        mask[i, start - 1:n] = True             # position start - 1 predicts the target's first token
    return {"input_ids": ids, "targets": tgt, "loss_mask": mask}


def generate_summaries(model, tokenizer, sources: Sequence[str], max_new_tokens: int) -> list[str]:
    """Greedy summaries of ``sources`` (source, separator; stops at end-of-text)."""
    return greedy_continuations(model, tokenizer, [summary_prompt_ids(tokenizer, s) for s in sources], max_new_tokens)


def rouge(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE-1 / 2 / L F-measure in percent (rouge_score with stemming, as the repo's calculate_rouge;
    it reports the bootstrap median of the same per-example scores)."""
    from rouge_score import rouge_scorer      # third-party, needed only here

    if len(predictions) != len(references) or not predictions:
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    scorer = rouge_scorer.RougeScorer(list(ROUGE_KEYS), use_stemmer=True)
    scores = [scorer.score(ref, pred) for pred, ref in zip(predictions, references)]
    return {k: 100.0 * sum(s[k].fmeasure for s in scores) / len(scores) for k in ROUGE_KEYS}


@torch.no_grad()
def greedy_continuations(model, tokenizer, prompts: Sequence[list[int]], max_new_tokens: int) -> list[str]:
    """Greedy continuations of token-id prompts, each decoded alone (no padding), stopping at end-of-text
    (our GPT's decoder, or a transformers model's `generate` without sampling)."""
    out = []
    for prompt in prompts:
        ids = torch.tensor([prompt], device=model_device(model))
        if isinstance(model, GPT):
            gen = model.generate(ids, max_new_tokens, temperature=0.0, eos_id=tokenizer.eos_token_id)
        else:
            gen = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                 do_sample=False, eos_token_id=tokenizer.eos_token_id,
                                 pad_token_id=tokenizer.eos_token_id)
        out.append(decode(tokenizer, gen[0, ids.shape[1]:].tolist()).strip())
    return out


# ------------------------------------------------------------------------------------- decoders
TRANSFORMERS_DIR = "hf"     # a finetuning run of a transformers model: its config.json and tokenizer


def load_decoder(path: str | Path):
    """(model in eval mode, tokenizer) of a decoder folder (module docstring): a run of ours, a
    finetuning run of a transformers model, or a transformers checkpoint folder."""
    path = Path(path)
    if (path / MODEL_FILE).is_file():
        return load_pretrained(path)
    if (path / TRANSFORMERS_DIR / "config.json").is_file():
        model, tok = load_transformers_lm(path / TRANSFORMERS_DIR, weights=False)
        ckpt = latest_checkpoint(path)
        if ckpt is None:
            raise FileNotFoundError(f"{path} holds no checkpoint")
        load_model_weights(ckpt, model)
        return model.eval(), tok
    if (path / "config.json").is_file():
        model, tok = load_transformers_lm(path)
        return model.eval(), tok
    raise FileNotFoundError(f"{path} is neither a run of ours ({MODEL_FILE}) nor a transformers checkpoint "
                            f"(config.json)")


def finetuning_inits(pretrain_dir: str | Path, domains: Sequence[str], baselines: dict[str, str],
                     data_dir: str | None) -> dict[str, Path]:
    """{model name: the folder its finetuning starts from}: each domain's 02_pretrain run under
    pretrain_dir, then each existing baseline ({name: transformers folder under data_dir, or an
    absolute path}; full scale: GPT-Neo 2.7B as "general"). A missing baseline folder is an error."""
    inits = {dom: Path(pretrain_dir) / dom for dom in domains}
    for name, folder in baselines.items():
        if name in inits:
            raise ValueError(f"baseline {name!r} is also a pretrained domain; give it another name")
        if not Path(folder).is_absolute() and data_dir is None:
            raise ValueError(f"baseline {name!r} ({folder}) is read from data_dir, which is None")
        inits[name] = Path(folder) if Path(folder).is_absolute() else Path(data_dir) / folder
        if not (inits[name] / "config.json").is_file():
            raise FileNotFoundError(f"baseline {name!r}: {inits[name]} holds no transformers checkpoint "
                                    f"(config.json; save it there with save_pretrained)")
    return inits


def transformer_blocks(model) -> list[torch.nn.Module] | None:
    """The layers FSDP shards one by one: None for our GPT (its `blocks`), a transformers model's
    decoder layers (GPT-Neo / GPT-2: transformer.h; Llama-style: model.layers)."""
    if isinstance(model, GPT):
        return None
    for outer, inner in (("transformer", "h"), ("model", "layers")):
        layers = getattr(getattr(model, outer, None), inner, None)
        if layers is not None:
            return list(layers)
    raise ValueError(f"{type(model).__name__}: decoder layers not found (transformer.h or model.layers)")


# ------------------------------------------------------------------------------------- entry point
@dataclass
class QAFinetuneSpec(StrictConfig):
    """What `finetune_main` needs. init: a pretrain run_dir (its latest checkpoint is loaded) or a
    transformers checkpoint folder (`load_decoder`).
    task "mc": train_file in `fmt` (a READERS key), prompts in `style`; "textgen": jsonl of
    {"question", "answer"}; "summarization": the repo's <split>.source / .target line files."""
    init: str
    task: str
    train_file: str
    train: dict[str, Any]
    fmt: str | None = None
    style: str = "cloze"
    head: str = "lm"
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
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")


def finetune_train(train: dict[str, Any], fmt: str | None, n_examples: int) -> dict[str, Any]:
    """TrainConfig keywords of one run: `train` with its `per_fmt[fmt]` overrides, and `epochs`
    turned into max_steps = ceil(epochs * n_examples / global_batch_size). A `train` without those
    keys is returned as it is."""
    train = dict(train)
    train.update((train.pop("per_fmt", None) or {}).get(fmt, {}))
    epochs = train.pop("epochs", None)
    if epochs is not None:
        if "global_batch_size" not in train:
            raise ValueError("train config with 'epochs' needs 'global_batch_size'")
        train["max_steps"] = max(1, math.ceil(epochs * n_examples / train["global_batch_size"]))
    return train


def finetune_main(config: dict[str, Any], run_dir: str) -> None:
    """Entry point for shared.train.run_training: load the pretrained model and finetune it."""
    spec = QAFinetuneSpec.from_dict(config)
    dist = init_distributed(spec.train.get("device"))
    model, tok = load_decoder(spec.init)
    ours = isinstance(model, GPT)
    model.train()
    if spec.task == "mc":
        examples = read_questions(spec.fmt, spec.train_file)[:spec.max_examples]
        data = encode_mc(examples, tok, spec.max_len, pad_id=tok.eos_token_id, style=spec.style, head=spec.head)
        loss_fn = mc_loss if spec.head == "lm" else functools.partial(mc_loss, head=spec.head)
    elif spec.task == "textgen":
        examples = list(read_jsonl(spec.train_file))[:spec.max_examples]
        data, loss_fn = encode_textgen(examples, tok, spec.max_len), lm_loss if ours else hf_lm_loss
    else:
        examples = read_source_target(spec.train_file)[:spec.max_examples]
        data, loss_fn = encode_summaries(examples, tok), lm_loss if ours else hf_lm_loss
    cfg = train_config(finetune_train(spec.train, spec.fmt, len(examples)), run_dir, spec.seed)
    batches = ResumableBatches(data, cfg.micro_batch_size, rank=dist.rank, world_size=dist.world_size, seed=spec.seed)
    if dist.rank == 0 and ours:
        save_model_files(run_dir, model, tok)
    elif dist.rank == 0:
        model.config.save_pretrained(str(Path(run_dir) / TRANSFORMERS_DIR))
        tok.save_pretrained(str(Path(run_dir) / TRANSFORMERS_DIR))
    Trainer(model, loss_fn, batches, cfg, blocks=transformer_blocks(model)).fit()
