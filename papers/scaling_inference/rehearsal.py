"""The CPU rehearsal of the full presets (``python ci/run_notebooks.py --scale full --rehearse --paper
scaling_inference``; ``ci/rehearsal.py``).

empirical runs at scale full on 2 torchrun nodes with the paper's grid cut to sizes only: two MPT-style sizes of
width 8 and 16 (one layer) at ratios 10-250 and 10-30 tokens/param (the fewest runs the analysis accepts: five at
10-100 for the typical fit, one above 100 to extrapolate to, one seed replicate for the noise), sequences of 256
tokens in global batches of 16 (2 ranks x 8), warmup capped at 2 steps, a checkpoint every 4 steps (one run
of each size longer than that is preempted once and resumes: ``PREEMPT_KINDS``), a loss record every step, 8 held-out sequences per domain.
The vocabulary of data_dir's tokenizer is a few dozen words, so that embeddings do not dominate the total
parameter count and the runs stay short. Everything else is the full preset's: total N, the smoothed final
training loss as the fitted loss, MPT architecture (ALiBi, LayerNorm, GELU, no bias, tied embeddings), bf16 (fp32
on CPU), FSDP, AdamW betas and clipping, cosine to alpha_f, the checkpoint at the end, the data_dir layout
(tokenizer/, train/<domain>/, val/<domain>/) and its packing, and every analysis threshold.

analytic runs at scale full as it is (UNLAUNCHED): it trains nothing (the paper's formulas), so it launches no
run; its full scale only draws finer curves.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, models, pre_tokenizers

from papers.scaling_inference.scales import size
from shared.data.tokenizer import DEFAULT_SPECIAL_TOKENS, wrap_tokenizer

# one run preempted per model size: the runs of a size differ only in their token budgets and seeds
PREEMPT_KINDS = {"empirical": ["run.size"]}
NOTEBOOKS = {
    "empirical": {
        "seq_len": 256, "max_warmup_steps": 2, "log_every": 1, "checkpoint_every": 4,
        "eval_sequences": 8, "eval_batch_size": 4, "noise_runs": [["a", 30]], "noise_seeds": 1,
        "sizes": [size("a", 1, 8, 1, 16, 6e-4, [10, 30, 100, 250], 8),
                  size("b", 1, 16, 2, 16, 3e-4, [10, 30], 8)],
    },
}
UNLAUNCHED = {"analytic": {}}
UNK = "<|unk|>"
WORDS = {"det": ["the", "a", "every", "one"], "adj": ["red", "small", "old", "quiet", "bright"],
         "noun": ["cat", "dog", "bird", "river", "house", "tree"], "verb": ["sees", "likes", "follows", "finds"],
         "end": [".", "!"]}
DOMAINS = {"stories": 600, "notes": 300}


def _document(rng: np.random.Generator, domain: str) -> str:
    """A few template sentences; "notes" put the verb first, so the two domains differ."""
    def pick(kind: str) -> str:
        return str(rng.choice(WORDS[kind]))
    sentences = []
    for _ in range(int(rng.integers(3, 8))):
        subject = f"{pick('det')} {pick('adj')} {pick('noun')}"
        obj = f"{pick('det')} {pick('noun')}"
        verb = pick("verb")
        sentences.append(f"{subject} {verb} {obj} {pick('end')}" if domain == "stories"
                         else f"{verb} {obj} , {subject} {pick('end')}")
    return " ".join(sentences)


def make_data_dir(root: Path) -> None:
    """The full preset's data_dir at toy size: ``tokenizer/`` (a word-level tokenizer of the few dozen words
    below, with the shared special tokens), ``train/<domain>/part-0.jsonl`` and ``val/<domain>/part-0.jsonl``
    ({"text"} rows) for two template domains."""
    root = Path(root)
    specials = [*DEFAULT_SPECIAL_TOKENS, UNK]
    vocab = {t: i for i, t in enumerate(specials + sorted({w for ws in WORDS.values() for w in ws} | {","}))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    wrap_tokenizer(tok, specials).save_pretrained(str(root / "tokenizer"))
    rng = np.random.default_rng(0)
    for domain, docs in DOMAINS.items():
        for split, n in (("train", docs), ("val", 40)):
            folder = root / split / domain
            folder.mkdir(parents=True, exist_ok=True)
            rows = (json.dumps({"text": _document(rng, domain)}) + "\n" for _ in range(n))
            (folder / "part-0.jsonl").write_text("".join(rows))
