"""A tiny general-text base model to finetune (the Llama-2-7B of the LoRA-vs-full-finetuning study).

A Llama-shaped decoder (RoPE, RMSNorm, SwiGLU, no biases) is pretrained on general prose, then exported
as a transformers LlamaForCausalLM folder (``gpt_hf.gpt_to_llama``), so the finetuning recipe, peft and the
evaluators treat it exactly as they would Llama-2-7B loaded from a local path:

    spec = BaseSpec(sources={"fortunes": 0.45, "gcide_general": 0.45, "code_stdlib": 0.1}, ...)
    run_training("papers.lora_vs_full.base:pretrain_base_main", spec.to_dict(), run_dir=out / "base")
    model, tok = load_base(out / "base" / HF_DIR)       # LlamaForCausalLM, tokenizer

The BPE is trained on the general sources *and* the finetuning domains' text (tokenizer_docs), as a
real base model's tokenizer covers code and numbers. Pretraining itself is shared.pipelines.lm_pretrain
(`base_pretrain_spec` maps a BaseSpec onto its LMPretrainSpec): streams are named corpora of
shared.data.corpora, or this module's ARITHMETIC_TEXT / FACTS_TEXT (registered as stream sources),
packed into seq_len windows; documents are not masked from one another (llm-foundry's default
concatenation), the same way the transformers model sees packed text later.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shared.data.corpora import corpus_names, load_corpus
from shared.data.generated import arithmetic, facts
from shared.data.lm_streams import register_source
from shared.data.tokenizer import train_bpe
from shared.pipelines.lm_pretrain import HF_DIR, LMPretrainSpec, export_hf, train_lm
from shared.train import run_training
from shared.train.distributed import barrier, init_distributed
from shared.train.model_files import load_transformers_lm
from shared.utils.config import StrictConfig

TOKENIZER_DIR = "tokenizer"        # the BPE of tokenizer_docs inside the run_dir (HF_DIR: the export)
HELDOUT_WINDOWS = 100_000          # every held-out window of eval_docs documents is scored
# Raw worked arithmetic (solutions without their questions), drawn from a generator stream of its own:
# the base has seen maths-like text, as Llama-2 had, but not the finetuning sets' questions.
ARITHMETIC_TEXT = "arithmetic_text"
_ARITHMETIC_TEXT_SEED = 7919
# Prose stating the facts of a made-up fact base (shared.data.generated.facts), three paraphrases per
# entity: knowledge the base memorises in pretraining, whose recall finetuning may erase.
FACTS_TEXT = "facts_text"
FACT_ENTITIES = 6            # entities per subject (5 subjects), FACT_SEED fixes the fact base
FACT_SEED = 0
EXTRA_SOURCES = (ARITHMETIC_TEXT, FACTS_TEXT)
FUNCTIONS_TRAIN = 3000       # train tasks of the generated `functions` corpus (shared.data.corpora's default)


def source_documents(name: str, split: str = "train", max_docs: int | None = None, seed: int = 0) -> list[str]:
    """Documents of a pretraining source: a named corpus (shared.data.corpora), ARITHMETIC_TEXT or
    FACTS_TEXT (the same statements in both splits: a memorisation set)."""
    if name == ARITHMETIC_TEXT:
        n = max_docs or 2000
        offset = 0 if split == "train" else 1
        records = arithmetic.generate_arithmetic(n, seed=_ARITHMETIC_TEXT_SEED + 2 * seed + offset)
        return [r["answer"] for r in records]
    if name == FACTS_TEXT:
        docs = facts.generate_fact_base(FACT_ENTITIES, FACT_SEED).documents(n_paraphrases=3)
        return docs[:max_docs]
    if name not in corpus_names():
        raise ValueError(f"unknown source {name!r}; choose from {corpus_names() + list(EXTRA_SOURCES)}")
    if name == "functions":
        return _function_documents(split, max_docs, seed)
    return load_corpus(name, split, max_docs=max_docs, seed=seed)


def _register(name: str) -> None:
    """Make `name` a stream source of shared.data.lm_streams (its documents: source_documents)."""
    def documents(split: str, max_docs: int | None = None, seed: int = 0) -> list[str]:
        return source_documents(name, split, max_docs, seed)
    register_source(name, documents)


for _name in EXTRA_SOURCES:
    _register(_name)


def _function_documents(split: str, max_docs: int | None, seed: int) -> list[str]:
    """The generated `functions` corpus: its default draw (3000 train / 300 test tasks with disjoint
    specifications), which shared.data.generated.functions.function_splits fills at every seed."""
    return load_corpus("functions", split, max_docs=max_docs, seed=seed, n_train=FUNCTIONS_TRAIN)


@dataclass
class BaseSpec(StrictConfig):
    """What `pretrain_base_main` needs; JSON round-trippable (it travels to torchrun workers).

    sources: {source: mixture weight} of the pretraining text (train splits): named corpora of
        shared.data.corpora, ARITHMETIC_TEXT or FACTS_TEXT (source_documents).
    max_docs: {corpus: documents kept} (a seeded subset; missing = all).
    tokenizer_docs: {corpus: documents} the BPE is trained on (may name corpora not in `sources`).
    model: GPTConfig keywords (vocab_size from the tokenizer; must be Llama-shaped).
    train: TrainConfig keywords; needs max_steps, global_batch_size, micro_batch_size.
    eval_docs: held-out documents per source for the "heldout" eval (0: no eval).
    """
    sources: dict[str, float]
    model: dict[str, Any]
    train: dict[str, Any]
    vocab_size: int = 2048
    seq_len: int = 128
    max_docs: dict[str, int] = field(default_factory=dict)
    tokenizer_docs: dict[str, int] = field(default_factory=dict)
    eval_docs: int = 200
    seed: int = 0

    def __post_init__(self):
        for key in ("global_batch_size", "micro_batch_size", "max_steps"):
            if key not in self.train:
                raise ValueError(f"BaseSpec.train needs {key!r}")


def train_tokenizer(spec: BaseSpec, out_dir: str | Path):
    """BPE of spec.vocab_size on spec.tokenizer_docs (default: the pretraining sources), saved to out_dir."""
    docs = spec.tokenizer_docs or {name: spec.max_docs.get(name) for name in spec.sources}
    texts: list[str] = []
    for name, n in sorted(docs.items()):
        texts += source_documents(name, "train", max_docs=n, seed=spec.seed)
    order = np.random.default_rng(spec.seed).permutation(len(texts))
    tok = train_bpe((texts[i] for i in order), spec.vocab_size, show_progress=False)
    tok.save_pretrained(str(out_dir))
    return tok


def _stream(name: str, max_docs: int | None, seed: int, split: str = "train") -> dict[str, Any]:
    return {"corpora": [{"name": name, "max_docs": max_docs, "seed": seed}], "split": split}


def base_pretrain_spec(spec: BaseSpec, tokenizer_dir: str | Path) -> LMPretrainSpec:
    """The shared pipeline's spec of the base's pretraining: one stream per source (its train split,
    max_docs documents) mixed by the source weights, held-out perplexity on eval_docs test documents
    of each source, no document masking (the transformers export to run_dir/hf is pretrain_base_main's)."""
    evals = {name: _stream(name, spec.eval_docs, spec.seed, "test") for name in spec.sources} if spec.eval_docs else {}
    return LMPretrainSpec.from_dict({
        "model": {**spec.model, "max_seq_len": max(spec.seq_len, spec.model.get("max_seq_len", 0))},
        "train": {"keep_last_n": 1, **spec.train},
        "data": {"seq_len": spec.seq_len, "tokenizer": {"path": str(tokenizer_dir)},
                 "streams": {name: _stream(name, spec.max_docs.get(name), spec.seed) for name in spec.sources},
                 "mix": dict(spec.sources)},
        "eval": {"heldout": evals, "sequences": HELDOUT_WINDOWS, "micro_batch_size": 16, "name": "heldout"},
        "seed": spec.seed, "doc_mask": False})


def pretrain_base_main(config: dict[str, Any], run_dir: str) -> None:
    """Entry point for shared.train.run_training: tokenizer, then shared.pipelines.lm_pretrain.train_lm
    (pretraining and the export to run_dir/hf)."""
    spec = BaseSpec.from_dict(config)
    dist = init_distributed(spec.train.get("device"))
    tok_dir = Path(run_dir) / TOKENIZER_DIR
    if dist.rank == 0 and not (tok_dir / "tokenizer.json").exists():
        train_tokenizer(spec, tok_dir)
    barrier()
    result = train_lm(base_pretrain_spec(spec, tok_dir), run_dir)
    model = getattr(result.trainer.model, "module", result.trainer.model)     # DDP wraps, FSDP2 does not
    if not model.cfg.is_llama_shaped:
        raise ValueError("the base model must be Llama-shaped (rope, rmsnorm, swiglu, no bias) to export it")
    if dist.rank == 0:
        export_hf(model, result.data.tokenizer, Path(run_dir) / HF_DIR)
    barrier()


def load_base(folder: str | Path, dtype: torch.dtype | str | None = None, device: str | torch.device | None = None):
    """(LlamaForCausalLM, tokenizer) from a local folder: ours (export_hf) or a real checkpoint such as
    Llama-2-7B (shared.train.model_files.load_transformers_lm: float32 by default whatever the checkpoint
    stores; never the hub). A tokenizer without a pad token gets eos as pad."""
    return load_transformers_lm(folder, dtype, device, pad_with_eos=True)


def ensure_base(spec: BaseSpec, run_dir: str | Path, nproc_per_node: int = 1, nnodes: int = 1,
                rerun: bool = False) -> Path:
    """Pretrain and export the base unless run_dir already holds an export of this exact spec;
    returns the exported transformers folder (run_dir/hf). A run of this spec that was killed before
    its export resumes from its latest checkpoint; run_dir is deleted only for ``rerun`` or when it
    holds a run of another spec (or of no recorded spec)."""
    run_dir = Path(run_dir)
    spec_file = run_dir / "base_spec.json"
    same = spec_file.exists() and json.loads(spec_file.read_text()) == spec.to_dict()
    if same and not rerun and (run_dir / HF_DIR / "config.json").exists():
        return run_dir / HF_DIR
    if run_dir.exists() and (rerun or not same):
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    spec_file.write_text(json.dumps(spec.to_dict(), indent=1))      # before training, so a killed run resumes
    run_training("papers.lora_vs_full.base:pretrain_base_main", spec.to_dict(), run_dir=run_dir,
                 nproc_per_node=nproc_per_node, nnodes=nnodes)
    return run_dir / HF_DIR
