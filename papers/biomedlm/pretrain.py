"""Domain-specific decoder pretraining, BioMedLM's recipe: a byte-level BPE trained on the domain's own
text, then a GPT-2-style decoder trained only on that text (Bolton et al. 2024).

    tok_dir = train_tokenizer({"gcide_medical": 1, "biomedical_abstracts": 1}, vocab_size=2048, world=WORLD)
    spec = DomainPretrainSpec(tokenizer=str(tok_dir), sources={...}, model=dict(n_layer=2, ...), train=dict(...))
    history = run_training("papers.biomedlm.pretrain:pretrain_main", spec.to_dict(), run_dir=...)
    model, tok = shared.pipelines.lm_pretrain.load_pretrained(run_dir)
    bits_per_byte(model, tok, heldout_docs)

Sources are named corpora of shared.data.corpora, `biomedical_abstracts` (the generated world's
documents, shared.data.generated.biomedical), or `dir:<folder>`: every jsonl / parquet / text file
under `<data_dir>/<folder>` (full scale; PubMed abstracts in the paper), or `pretrained:<folder>`: an
existing tokenizer saved under `<data_dir>/<folder>` (GPT-2's, the paper's comparison; it has no text
and `train_tokenizer` returns its folder). `max_mb` caps the megabytes
read from a source (a seeded subset of its documents), which is how two domains get text of the same
size. A model trains on a `Mixture` of its sources' packed sequences with the given weights, so two
models with the same `train` and `seq_len` see the same number of tokens: the same compute.
Pretraining itself is shared.pipelines.lm_pretrain (`domain_pretrain_spec` maps a DomainPretrainSpec
onto its LMPretrainSpec; the sources above are one registered stream source, SOURCE).
"""
from __future__ import annotations

import functools
import math
import shutil
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shared.data.cache import atomic_dir, cache_root, stable_hash
from shared.data.corpora import corpus_names, load_corpus
from shared.data.formats import iter_documents
from shared.data.generated import biomedical
from shared.data.lm_streams import register_source
from shared.data.tokenizer import train_bpe
from shared.eval._model_io import encode
from shared.eval.perplexity import evaluate_perplexity
from shared.pipelines.lm_pretrain import LMPretrainSpec, train_lm
from shared.train import TrainConfig
from shared.train.distributed import init_distributed
from shared.utils.config import StrictConfig

ABSTRACTS = "biomedical_abstracts"
DIR_PREFIX = "dir:"
PRETRAINED_PREFIX = "pretrained:"
SOURCE = "biomedlm_source"     # the stream source of shared.data.lm_streams that reads source_documents
# GPT-2's (and BioMedLM's) architecture switches of shared.models.gpt; the paper's sizes are in
# papers/biomedlm/scales.py
GPT2_STYLE = dict(position="learned", norm="layernorm", mlp="gelu", tie_embeddings=True, bias=True)


# ------------------------------------------------------------------------------------------ sources
@functools.lru_cache(maxsize=8)
def _world(n_diseases: int, test_fraction: float, docs_per_disease: int, seed: int) -> biomedical.BiomedicalSplits:
    return biomedical.biomedical_splits(n_diseases, test_fraction, docs_per_disease, seed)


def biomedical_world(world: dict | None = None) -> biomedical.BiomedicalSplits:
    """The generated world for a config dict {n_diseases, test_fraction, docs_per_disease, seed} (cached)."""
    w = {"n_diseases": 60, "test_fraction": 0.3, "docs_per_disease": 10, "seed": 0, **(world or {})}
    return _world(int(w["n_diseases"]), float(w["test_fraction"]), int(w["docs_per_disease"]), int(w["seed"]))


def _cap_bytes(docs: list[str], max_mb: float | None, seed: int, name: str) -> list[str]:
    """A seeded subset of docs holding at most max_mb megabytes, kept in corpus order."""
    if max_mb is None:
        return docs
    order = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))]).permutation(len(docs))
    sizes = np.array([len(docs[i].encode("utf-8")) for i in order])
    keep = np.sort(order[np.cumsum(sizes) <= max_mb * 1e6])
    return [docs[i] for i in keep]


def source_documents(name: str, split: str = "train", *, max_mb: float | None = None, world: dict | None = None,
                     data_dir: str | None = None, seed: int = 0) -> list[str]:
    """Documents of one source's split (see the module docstring), capped at max_mb megabytes.

    `biomedical_abstracts` test: fresh abstracts of the same world (new wording and numbers, the
    same facts). `dir:` sources have no split: they name their folder for each split."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if name.startswith(PRETRAINED_PREFIX):
        return []
    if name == ABSTRACTS:
        w = biomedical_world(world)
        docs = w.documents if split == "train" else biomedical.documents(w.world, 2, seed=w.seed + 1)
    elif name.startswith(DIR_PREFIX):
        if data_dir is None:
            raise ValueError(f"source {name!r} reads from data_dir, which is None")
        return list(_iter_dir(Path(data_dir) / name[len(DIR_PREFIX):], max_mb))
    elif name in corpus_names():
        docs = load_corpus(name, split)
    else:
        raise ValueError(f"unknown source {name!r}; choose {ABSTRACTS!r}, 'dir:<folder under data_dir>' "
                         f"or a corpus: {corpus_names()}")
    return _cap_bytes(docs, max_mb, seed, name)


def _iter_dir(folder: Path, max_mb: float | None) -> Iterator[str]:
    total = 0
    for doc in iter_documents(folder):
        total += len(doc.encode("utf-8"))
        if max_mb is not None and total > max_mb * 1e6:
            return
        yield doc


# ---------------------------------------------------------------------------------------- tokenizer
def tokenizer_sources(domain: Mapping[str, Any]) -> dict[str, float]:
    """The sources a domain's tokenizer trains on (a DomainText as a dict): its ``tokenizer_sources``,
    else the model's ``sources``."""
    return domain.get("tokenizer_sources") or domain["sources"]


def train_tokenizer(sources: dict[str, float], vocab_size: int, *, max_mb: dict[str, float] | None = None,
                    world: dict | None = None, data_dir: str | None = None, seed: int = 0,
                    out_dir: str | Path | None = None) -> Path:
    """Train a byte-level BPE (BioMedLM's recipe: no prefix space, 256-byte alphabet, min_frequency 2)
    on the train split of `sources` (weights unused here; every source's capped text is used), and
    return its folder: `out_dir`, or a cache folder keyed by every argument. A domain whose only
    source is `pretrained:<folder>` returns that folder under data_dir (nothing is trained)."""
    pretrained = [s for s in sources if s.startswith(PRETRAINED_PREFIX)]
    if pretrained:
        if len(sources) != 1:
            raise ValueError(f"a pretrained tokenizer is its domain's only source, got {sorted(sources)}")
        return pretrained_tokenizer_dir(pretrained[0], data_dir)
    max_mb = max_mb or {}
    key = stable_hash({"sources": sorted(sources), "vocab": vocab_size, "max_mb": max_mb, "world": world,
                       "data_dir": data_dir, "seed": seed, "version": 1})
    folder = Path(out_dir) if out_dir is not None else cache_root() / "tokenizers" / f"domain-{key}"
    if (folder / "tokenizer.json").exists():
        return folder
    texts: list[str] = []
    for name in sorted(sources):
        texts += source_documents(name, "train", max_mb=max_mb.get(name), world=world, data_dir=data_dir, seed=seed)
    order = np.random.default_rng(seed).permutation(len(texts))
    tok = train_bpe((texts[i] for i in order), vocab_size, show_progress=False)
    if len(tok) != vocab_size:
        raise ValueError(f"the text ran out of merges: vocabulary {len(tok)} < {vocab_size}; give more text")
    if folder.exists():
        shutil.rmtree(folder)
    with atomic_dir(folder) as tmp:
        tok.save_pretrained(str(tmp))
    return folder


def pretrained_tokenizer_dir(source: str, data_dir: str | None) -> Path:
    """The folder of a `pretrained:<folder>` source, checked to load through transformers
    (shared.data.tokenizer.load_tokenizer: tokenizer.json and its config, e.g. GPT-2's from the hub)."""
    if data_dir is None:
        raise ValueError(f"source {source!r} reads from data_dir, which is None")
    folder = Path(data_dir) / source[len(PRETRAINED_PREFIX):]
    if not (folder / "tokenizer.json").is_file():
        raise FileNotFoundError(f"{folder}: no tokenizer.json (save the tokenizer there with save_pretrained)")
    return folder


# ----------------------------------------------------------------------------------------- streams
def _source_documents_of_stream(split: str, max_docs: int | None = None, seed: int = 0, *, source: str,
                                max_mb: float | None = None, world: dict | None = None,
                                data_dir: str | None = None) -> list[str]:
    """A SOURCE entry of a stream: source_documents of `source` (max_docs unused: `max_mb` caps)."""
    return source_documents(source, split, max_mb=max_mb, world=world, data_dir=data_dir, seed=seed)


register_source(SOURCE, _source_documents_of_stream)


def domain_streams(sources: dict[str, float], split: str = "train", *, max_mb: dict[str, float] | None = None,
                   world: dict | None = None, data_dir: str | None = None, seed: int = 0,
                   packed_dir: str | None = None) -> dict[str, dict[str, Any]]:
    """{source: StreamSpec fields} of shared.data.lm_streams for the pipeline. An uncapped `dir:` source
    is a folder stream (tokenized from its files, full scale); every other source is one SOURCE entry.
    packed_dir: a root folder for the packed streams (default: the cache)."""
    max_mb = max_mb or {}
    streams = {}
    for name in sources:
        if name.startswith(DIR_PREFIX) and max_mb.get(name) is None:
            if data_dir is None:
                raise ValueError(f"source {name!r} reads from data_dir, which is None")
            stream: dict[str, Any] = {"path": str(Path(data_dir) / name[len(DIR_PREFIX):])}
        else:
            stream = {"corpora": [{"name": SOURCE, "source": name, "max_mb": max_mb.get(name), "seed": seed,
                                   "world": world if name == ABSTRACTS else None, "data_dir": data_dir}]}
        stream["split"] = split
        if packed_dir:
            key = stable_hash({"stream": stream, "version": 1})
            stream["packed_dir"] = str(Path(packed_dir) / f"{name.replace(':', '_').replace('/', '_')}-{split}-{key}")
        streams[name] = stream
    return streams


# ------------------------------------------------------------------------------------------ metrics
def doc_chunks(tokenizer, docs: list[str], max_len: int) -> tuple[list[list[int]], int]:
    """Each document as [eos] + tokens + [eos], cut into chunks of <= max_len tokens that overlap by one
    (so each token after the first is predicted exactly once); also the documents' UTF-8 bytes plus one
    per document for its end-of-text."""
    eos = tokenizer.eos_token_id
    chunks, n_bytes = [], 0
    for d in docs:
        ids = [eos] + encode(tokenizer, d) + [eos]
        n_bytes += len(d.encode("utf-8")) + 1
        for start in range(0, len(ids) - 1, max_len - 1):
            chunks.append(ids[start:start + max_len])
    return chunks, n_bytes


@torch.no_grad()
def bits_per_byte(model, tokenizer, docs: list[str], max_len: int | None = None, batch_size: int = 16) -> dict:
    """Bits per UTF-8 byte of held-out documents (comparable across tokenizers, unlike loss per token),
    and the nats per token and token count it comes from."""
    max_len = max_len or model.cfg.max_seq_len
    chunks, n_bytes = doc_chunks(tokenizer, docs, max_len)
    chunks = [c for c in chunks if len(c) >= 2]
    r = evaluate_perplexity(model, {"d": chunks}, batch_size=batch_size, pad_id=tokenizer.eos_token_id)["d"]
    total_nats = r.mean_loss * r.tokens
    return {"bits_per_byte": total_nats / math.log(2) / n_bytes, "nats_per_token": r.mean_loss,
            "tokens": r.tokens, "bytes": n_bytes}


# ---------------------------------------------------------------------------------------- pretraining
@dataclass
class DomainPretrainSpec(StrictConfig):
    """Everything `pretrain_main` needs, JSON round-trippable (it travels to torchrun workers).

    tokenizer: a tokenizer folder. sources: {source: mixture weight}. max_mb: {source: megabytes cap}.
    model: GPTConfig keywords or a flavour name (shared.models.flavours; vocab_size comes from the
    tokenizer). train: TrainConfig keywords
    (needs max_steps, global_batch_size, micro_batch_size). world: the generated world's config.
    """
    tokenizer: str
    sources: dict[str, float]
    model: str | dict[str, Any]
    train: dict[str, Any]
    seq_len: int = 128
    max_mb: dict[str, float] = field(default_factory=dict)
    world: dict[str, Any] | None = None
    data_dir: str | None = None
    packed_dir: str | None = None
    seed: int = 0



def train_config(train: dict[str, Any], run_dir: str, seed: int) -> TrainConfig:
    """TrainConfig of a finetuning run: `train` keywords (max_steps, global_batch_size and
    micro_batch_size required), checkpointed at the end, the last checkpoint kept."""
    for key in ("global_batch_size", "micro_batch_size", "max_steps"):
        if key not in train:
            raise ValueError(f"train config needs {key!r}")
    return TrainConfig(**{"seed": seed, "checkpoint_at_end": True, "keep_last_n": 1, **train, "run_dir": run_dir})


def domain_pretrain_spec(spec: DomainPretrainSpec) -> LMPretrainSpec:
    """The shared pipeline's spec of one domain model: the domain tokenizer, one stream per source mixed
    by the source weights, document-masked LM loss, model.json + tokenizer/ written beside the
    checkpoints (shared.pipelines.lm_pretrain.load_pretrained reads them back)."""
    model = spec.model
    if isinstance(model, dict):
        model = {**model, "max_seq_len": max(spec.seq_len, model.get("max_seq_len", 0))}
    return LMPretrainSpec.from_dict({
        "model": model,
        "train": {"checkpoint_at_end": True, "keep_last_n": 1, **spec.train},
        "data": {"seq_len": spec.seq_len, "tokenizer": {"path": spec.tokenizer},
                 "streams": domain_streams(spec.sources, max_mb=spec.max_mb, world=spec.world,
                                           data_dir=spec.data_dir, seed=spec.seed, packed_dir=spec.packed_dir),
                 "mix": dict(spec.sources)},
        "seed": spec.seed, "export": ["model_files"]})


def pretrain_main(config: dict[str, Any], run_dir: str) -> None:
    """Entry point for shared.train.run_training: train a decoder on the spec's sources."""
    spec = DomainPretrainSpec.from_dict(config)
    init_distributed(spec.train.get("device"))
    train_lm(domain_pretrain_spec(spec), run_dir)
