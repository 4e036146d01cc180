"""A tiny general-text base model to finetune (the Llama-2-7B of the LoRA-vs-full-finetuning study).

A Llama-shaped decoder (RoPE, RMSNorm, SwiGLU, no biases) is pretrained on general prose, then exported
as a transformers LlamaForCausalLM folder (``GPT.to_hf()``), so the finetuning recipe, peft and the
evaluators treat it exactly as they would Llama-2-7B loaded from a local path:

    spec = BaseSpec(sources={"fortunes": 0.45, "gcide_general": 0.45, "code_stdlib": 0.1}, ...)
    run_training("shared.recipes.general_base:pretrain_base_main", spec.to_dict(), run_dir=out / "base")
    model, tok = load_base(out / "base" / HF_DIR)       # LlamaForCausalLM, tokenizer

The BPE is trained on the general sources *and* the finetuning domains' text (tokenizer_docs), as a
real base model's tokenizer covers code and numbers. Pretraining streams are named corpora of
shared.data.corpora packed into seq_len windows; documents are not masked from one another
(llm-foundry's default concatenation), the same way the transformers model sees packed text later.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shared.data.cache import cache_root, stable_hash
from shared.data.corpora import corpus_names, load_corpus
from shared.data.generated import arithmetic, facts
from shared.data.mixture import ConstantSchedule, Mixture
from shared.data.packing import INDEX, PackedDataset, pack_documents, tokenizer_fingerprint
from shared.data.tokenizer import train_bpe

HF_DIR = "hf"             # the exported transformers folder (weights + tokenizer) inside the run_dir
TOKENIZER_DIR = "tokenizer"
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
    return load_corpus(name, split, max_docs=max_docs, seed=seed)


def packed_source(name: str, tokenizer, seq_len: int, split: str = "train", max_docs: int | None = None,
                  seed: int = 0) -> PackedDataset:
    """A source packed into seq_len windows, cached by every argument and the tokenizer."""
    key = stable_hash({"name": name, "split": split, "max_docs": max_docs, "seed": seed, "seq_len": seq_len,
                       "tok": tokenizer_fingerprint(tokenizer), "v": 1})
    folder = cache_root() / "packed" / f"base-{name}-{split}-{key}"
    if not (folder / INDEX).exists():
        docs = source_documents(name, split, max_docs, seed)
        pack_documents(docs, tokenizer, seq_len, folder, total=len(docs), desc=f"pack {name}/{split}")
    return PackedDataset(folder)


@dataclass
class BaseSpec:
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

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BaseSpec":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown BaseSpec keys {unknown}; valid keys: {sorted(names)}")
        spec = cls(**d)
        for key in ("global_batch_size", "micro_batch_size", "max_steps"):
            if key not in spec.train:
                raise ValueError(f"BaseSpec.train needs {key!r}")
        return spec


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


def heldout_windows(tokenizer, sources, seq_len: int, max_docs: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """{corpus: (N, seq_len + 1) LongTensor} of packed test-split windows, for perplexity evals."""
    out = {}
    for name in sources:
        ds = packed_source(name, tokenizer, seq_len, split="test", max_docs=max_docs, seed=seed)
        out[name] = torch.from_numpy(ds.windows(np.arange(len(ds)))[0])
    return out


def pretrain_base_main(config: dict[str, Any], run_dir: str) -> None:
    """Entry point for shared.train.run_training: tokenizer, pretraining, export to run_dir/hf."""
    from shared.data.tokenizer import load_tokenizer
    from shared.models.gpt import GPT, GPTConfig
    from shared.train import Trainer, TrainConfig
    from shared.train.distributed import barrier, init_distributed
    from shared.train.lm import lm_loss, perplexity_eval

    spec = BaseSpec.from_dict(config)
    dist = init_distributed(spec.train.get("device"))
    run_dir_p = Path(run_dir)
    tok_dir = run_dir_p / TOKENIZER_DIR
    if dist.rank == 0 and not (tok_dir / "tokenizer.json").exists():
        train_tokenizer(spec, tok_dir)
    barrier()
    tok = load_tokenizer(tok_dir)
    streams = {}
    for name in spec.sources:      # rank 0 packs (cached); the others read its cache after the barrier
        if dist.rank == 0:
            streams[name] = packed_source(name, tok, spec.seq_len, max_docs=spec.max_docs.get(name), seed=spec.seed)
    barrier()
    for name in spec.sources:
        streams.setdefault(name, packed_source(name, tok, spec.seq_len, max_docs=spec.max_docs.get(name),
                                               seed=spec.seed))
    cfg = TrainConfig(**{"seed": spec.seed, "keep_last_n": 1, **spec.train, "run_dir": run_dir})
    data = Mixture(streams, ConstantSchedule(spec.sources), global_batch_size=cfg.global_batch_size,
                   total_steps=cfg.max_steps, seed=spec.seed, rank=dist.rank, world_size=dist.world_size,
                   micro_batch_size=cfg.micro_batch_size)
    torch.manual_seed(spec.seed)
    model = GPT(GPTConfig(**{**spec.model, "vocab_size": len(tok),
                             "max_seq_len": max(spec.seq_len, spec.model.get("max_seq_len", 0))}))
    if not model.cfg.is_llama_shaped:
        raise ValueError("the base model must be Llama-shaped (rope, rmsnorm, swiglu, no bias) to export it")
    evals = {}
    if spec.eval_docs:
        evals["heldout"] = perplexity_eval(heldout_windows(tok, spec.sources, spec.seq_len, spec.eval_docs, spec.seed))
    # no document masking: the exported transformers model sees packed text the same way
    Trainer(model, functools.partial(lm_loss, use_doc_mask=False), data, cfg, eval_fns=evals).fit()
    if dist.rank == 0:
        export_hf(model, tok, run_dir_p / HF_DIR)
    barrier()


def export_hf(model, tokenizer, folder: str | Path) -> Path:
    """Save our GPT as a transformers LlamaForCausalLM folder with its tokenizer."""
    folder = Path(folder)
    hf = model.to_hf()
    hf.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


def load_base(folder: str | Path, dtype: torch.dtype | str | None = None, device: str | torch.device | None = None):
    """(LlamaForCausalLM, tokenizer) from a local folder: ours (export_hf) or a real checkpoint such as
    Llama-2-7B. Never touches the hub. dtype: e.g. torch.bfloat16 or "bfloat16" (default: as saved,
    float32 for ours); device: where to put the model (default CPU). A tokenizer without a pad token
    gets eos as pad."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(folder)
    if not (folder / "config.json").exists():
        raise FileNotFoundError(f"{folder} holds no transformers model (config.json missing)")
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True,
                                                 **({"dtype": dtype} if dtype is not None else {}))
    if device is not None:
        model = model.to(device)
    tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return model, tok


def ensure_base(spec: BaseSpec, run_dir: str | Path, nproc_per_node: int = 1, nnodes: int = 1,
                rerun: bool = False) -> Path:
    """Pretrain and export the base unless run_dir already holds an export of this exact spec;
    returns the exported transformers folder (run_dir/hf)."""
    import json
    import shutil

    from shared.train import run_training

    run_dir = Path(run_dir)
    spec_file = run_dir / "base_spec.json"
    done = (run_dir / HF_DIR / "config.json").exists() and spec_file.exists() \
        and json.loads(spec_file.read_text()) == spec.to_dict()
    if rerun or not done:
        if run_dir.exists():
            shutil.rmtree(run_dir)
        run_training("shared.recipes.general_base:pretrain_base_main", spec.to_dict(), run_dir=run_dir,
                     nproc_per_node=nproc_per_node, nnodes=nnodes)
        spec_file.write_text(json.dumps(spec.to_dict(), indent=1))
    return run_dir / HF_DIR
