"""Offline stand-ins for GLUE tasks at smoke scale, built from WordNet entries (Debian's dict-wn;
``shared.data.corpora``) of the corpus's *test* split, so pretraining on the train split never saw
their text. Each is small, learnable by a 2-layer encoder in ~100 finetuning steps, and leans on
what MLM pretraining teaches (word order, word classes, word identity), so better pretraining
scores higher. What each stands in for:

| task          | input                         | label                                  | stands for        | metric     |
|---------------|-------------------------------|----------------------------------------|-------------------|------------|
| acceptability | a WordNet example sentence or gloss, half with their words shuffled | 1 = original word order | CoLA (grammaticality) | Matthews |
| word_class    | a gloss, headword removed     | part of speech defined: noun / verb / adjective (balanced) | SST-2 / MNLI (single-sentence classes) | accuracy |
| similarity    | (sentence, copy with a fraction r of its words replaced by random words) | 5 (1 - r) | STS-B (pair regression) | Pearson, Spearman |
| synonym_swap  | (sentence, copy with one word replaced by a WordNet synonym or by a random word) | 1 = synonym | MRPC (pair paraphrase) | F1, accuracy |

All are generated deterministically from ``seed``; train and eval sentences are disjoint (split by a hash of the text).
"""
from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

import numpy as np

from shared.data.corpora import load_records
from shared.eval.glue import GlueTaskSpec, Task, TaskData, read_glue_tasks

POS = ("n", "v", "adj")          # adverbs are too rare in the test split to balance
STANDIN_TASKS: dict[str, GlueTaskSpec] = {t.name: t for t in [
    GlueTaskSpec("acceptability", ("sentence",), 2, ("matthews",), stands_for="cola"),
    GlueTaskSpec("word_class", ("sentence",), len(POS), ("accuracy",), stands_for="sst2"),
    GlueTaskSpec("similarity", ("sentence1", "sentence2"), 1, ("pearson", "spearman"), stands_for="stsb"),
    GlueTaskSpec("synonym_swap", ("sentence1", "sentence2"), 2, ("f1", "accuracy"), stands_for="mrpc"),
]}

_SENSE = re.compile(r"(?:^|\s)(?:(n|v|adj|adv)\s+)?(\d+):\s")
_SYN = re.compile(r"\[syn:([^\]]*)\]")
_ANNOTATION = re.compile(r"\[\w+:[^\]]*\]")   # [ant: ...], [also: ...] and the like
_WORD = re.compile(r"^[a-z]+$")


@dataclass(frozen=True)
class Sense:
    """One WordNet sense: the entry's headword, its part of speech, gloss, example sentences, synonyms."""
    entry: int
    headword: str
    pos: str
    gloss: str
    examples: tuple[str, ...]
    synonyms: tuple[str, ...]


def parse_wordnet_entry(text: str, entry: int = 0) -> list[Sense]:
    """Senses of one WordNet entry as the corpus stores it: 'word\\n n 1: gloss; "example" [syn: a, b]\\n 2: ...'."""
    head, _, body = text.partition("\n")
    body = " ".join(body.split())
    senses, pos = [], None
    matches = list(_SENSE.finditer(body))
    for k, m in enumerate(matches):
        pos = m.group(1) or pos
        chunk = body[m.end(): matches[k + 1].start() if k + 1 < len(matches) else len(body)]
        syn = _SYN.search(chunk)
        synonyms = tuple(s.strip() for s in syn.group(1).split(",")) if syn else ()
        chunk = _ANNOTATION.sub("", chunk).strip()
        parts = chunk.split(";")
        gloss = parts[0].strip()
        examples = tuple(p.strip().strip('"').strip() for p in parts[1:] if p.strip().startswith('"'))
        if pos in (*POS, "adv") and gloss:
            senses.append(Sense(entry, head.strip(), pos, gloss, examples, synonyms))
    return senses


def wordnet_senses(split: str = "test") -> list[Sense]:
    return [s for i, r in enumerate(load_records("wordnet", split)) for s in parse_wordnet_entry(r["text"], i)]


def _words(s: str) -> list[str]:
    return s.split()


def _in_eval(text: str, eval_fraction: float = 0.3) -> bool:
    """Train/eval split by a stable hash of the text: WordNet repeats glosses across variant
    entries ('.22 caliber', '.22-caliber'), so splitting by entry would leak text."""
    return zlib.crc32(text.encode("utf-8")) / 2**32 < eval_fraction


def _sentences(senses: list[Sense], min_words: int, max_words: int) -> list[tuple[int, str]]:
    out = []
    for s in senses:
        for text in (*s.examples, s.gloss):
            if min_words <= len(_words(text)) <= max_words:
                out.append((s.entry, text))
    return out


def _acceptability(senses, rng, n_train, n_eval):
    def build(evaluation, n):
        pool = [t for _, t in _sentences(senses, 6, 24) if _in_eval(t) == evaluation]
        pick = rng.choice(len(pool), size=min(n, len(pool)), replace=False)
        texts, labels = [], []
        for j, i in enumerate(pick):
            w = _words(pool[i])
            if j % 2:  # corrupt: shuffle the word order (retry until it differs)
                for _ in range(10):
                    v = [w[k] for k in rng.permutation(len(w))]
                    if v != w:
                        texts.append(" ".join(v)); labels.append(0)
                        break
                continue
            texts.append(" ".join(w)); labels.append(1)
        return TaskData([texts], labels)
    return build(False, n_train), build(True, n_eval)


def _word_class(senses, rng, n_train, n_eval):
    def build(evaluation, n):
        by_pos = {p: sorted({s.gloss for s in senses if _in_eval(s.gloss) == evaluation and s.pos == p
                              and len(_words(s.gloss)) >= 3}) for p in POS}
        per = min(n // len(POS), *(len(v) for v in by_pos.values()))
        texts, labels = [], []
        for label, p in enumerate(POS):
            for i in rng.choice(len(by_pos[p]), size=per, replace=False):
                texts.append(by_pos[p][i]); labels.append(label)
        order = rng.permutation(len(texts))
        return TaskData([[texts[i] for i in order]], [labels[i] for i in order])
    return build(False, n_train), build(True, n_eval)


def _vocabulary(senses) -> list[str]:
    words = sorted({w for s in senses for w in _words(s.gloss.lower()) if _WORD.match(w)})
    return words


def _similarity(senses, rng, n_train, n_eval):
    vocab = _vocabulary(senses)

    def build(evaluation, n):
        pool = [t for _, t in _sentences(senses, 6, 20) if _in_eval(t) == evaluation]
        a_texts, b_texts, labels = [], [], []
        for i in rng.choice(len(pool), size=min(n, len(pool)), replace=False):
            w = _words(pool[i])
            k = int(rng.integers(0, len(w) + 1))               # words replaced
            swap = rng.choice(len(w), size=k, replace=False)
            v = list(w)
            for j in swap:
                v[j] = vocab[int(rng.integers(len(vocab)))]
            a_texts.append(" ".join(w)); b_texts.append(" ".join(v)); labels.append(5.0 * (1 - k / len(w)))
        return TaskData([a_texts, b_texts], labels)
    return build(False, n_train), build(True, n_eval)


def _synonym_swap(senses, rng, n_train, n_eval):
    vocab = _vocabulary(senses)
    synonyms: dict[str, set[str]] = {}
    for s in senses:
        group = [x for x in s.synonyms if _WORD.match(x)]
        for x in group:
            synonyms.setdefault(x, set()).update(y for y in group if y != x)

    def build(evaluation, n):
        pool = []
        for _, text in _sentences(senses, 5, 20):
            w = _words(text)
            slots = [j for j, x in enumerate(w) if synonyms.get(x)]
            if _in_eval(text) == evaluation and slots:
                pool.append((w, slots))
        a_texts, b_texts, labels = [], [], []
        for j, i in enumerate(rng.choice(len(pool), size=min(n, len(pool)), replace=False)):
            w, slots = pool[i]
            slot = slots[int(rng.integers(len(slots)))]
            v = list(w)
            if j % 2 == 0:
                v[slot] = sorted(synonyms[w[slot]])[int(rng.integers(len(synonyms[w[slot]])))]
            else:
                v[slot] = vocab[int(rng.integers(len(vocab)))]
            a_texts.append(" ".join(w)); b_texts.append(" ".join(v)); labels.append(1 if j % 2 == 0 else 0)
        return TaskData([a_texts, b_texts], labels)
    return build(False, n_train), build(True, n_eval)


_BUILDERS = {"acceptability": _acceptability, "word_class": _word_class, "similarity": _similarity,
             "synonym_swap": _synonym_swap}


def standin_task(name: str, n_train: int = 2000, n_eval: int = 500, seed: int = 0,
                 senses: list[Sense] | None = None) -> Task:
    """One stand-in task (see the module table), ``n_train`` / ``n_eval`` examples at most."""
    if name not in _BUILDERS:
        raise ValueError(f"unknown stand-in task {name!r}; valid: {', '.join(_BUILDERS)}")
    senses = wordnet_senses("test") if senses is None else senses
    rng = np.random.default_rng([seed, len(name)] + [ord(c) for c in name])
    train, evaluation = _BUILDERS[name](senses, rng, n_train, n_eval)
    return Task(STANDIN_TASKS[name], train, evaluation)


def standin_tasks(names, n_train: int = 2000, n_eval: int = 500, seed: int = 0) -> list[Task]:
    senses = wordnet_senses("test")
    return [standin_task(n, n_train, n_eval, seed, senses) for n in names]


def downstream_tasks(names, glue_dir: str | None = None, n_train: int | None = 2000, n_eval: int | None = 500,
                     seed: int = 0) -> list[Task]:
    """The real GLUE tasks read from ``glue_dir`` when given (shared.eval.glue), else these stand-ins.

    n_train / n_eval cap the examples (None: all; stand-ins need numbers)."""
    if glue_dir is not None:
        tasks = read_glue_tasks(glue_dir, names)
        return [Task(t.spec, t.train.subset(n_train, seed), t.eval.subset(n_eval, seed)) for t in tasks]
    return standin_tasks(names, n_train or 2000, n_eval or 500, seed)
