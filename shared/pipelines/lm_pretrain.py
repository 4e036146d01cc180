"""One decoder-LM pretraining pipeline: tokenizer, packed streams, mixture, model, TrainConfig, fit.

API. A run is one `LMPretrainSpec` (StrictConfig; JSON round-trippable, it travels to torchrun workers):

    spec = LMPretrainSpec.from_dict({
        "model": "mpt-7b" | {"flavour": "mpt-7b", **GPTConfig overrides} | {GPTConfig fields},
                                          # vocab_size always comes from the tokenizer
        "train": {TrainConfig fields},    # run_dir, resume and seed are set by the pipeline
        "data": {"seq_len": 128,
                 "tokenizer": {"path": folder} | {"vocab_size": 2048, "corpora": [...], "max_docs": 100},
                 "streams": {"general": {"corpora": [{"name": "wordnet", "max_docs": 1500}, ...]},
                             "math": {"path": "/data/math", "packed_dir": "/data/packed/math"}},
                 "mix": {"general": 0.7, "math": 0.3} | None,      # None: proportional to stream tokens
                 "phases": [[0.0, {...}], [0.8, {...}]]},          # piecewise mix; replaces `mix`
        "eval": {"heldout": {name: StreamSpec}, "sequences": 128, "micro_batch_size": 32, "name": "val"},
        "seed": 0, "doc_mask": True,
        "branch_from": None, "branch_points": [], "export": []})
    result = train_lm(spec, run_dir, extra_evals=None)    # in this process (one rank of a launch)
    launch_pretraining(spec.to_dict(), run_dir, nproc_per_node=8, nnodes=2, rdzv_endpoint="host:29500")

Streams and tokenizers: shared.data.lm_streams (rank 0 builds and packs, the others wait; the
in-process runs of a sweep share them through a per-process memo). Model: shared.models.gpt.GPT
built on the training device after `seed_everything(seed)`, so initial weights depend on the seed
only. Data: a shared.data.mixture.Mixture over the packed training streams (rank-sharded,
resumable). Training: shared.train.Trainer with `lm_loss` (attention masked at document
boundaries unless `doc_mask` is False, llm-foundry's default concatenation).

Evaluation: perplexity by domain on `eval.heldout` (a seeded subset of `sequences` windows of each,
the same for every run) every `train.eval_every` steps, logged as "<name>/loss" (token-weighted
over domains) and "<name>/<domain>_loss"; `extra_evals(tokenizer, spec) -> {name: eval_fn}` adds a
paper's own benchmarks.

Options.
- resume: always from the latest complete checkpoint in run_dir; checkpoints are never deleted
  beyond `train.keep_last_n`, and branch points are kept outside their folder.
- branching: `branch_from` names another run's checkpoint to start from when run_dir holds none
  (weights, optimizer, LR schedule, RNG and mixture position restored; the mix may differ).
  `branch_points` are steps at which the run checkpoints, keeps that checkpoint as
  `branch_point_dir(run_dir, step)` and evaluates, for branches to start from.
- export: "model_files" writes run_dir/model.json (the GPTConfig) and run_dir/tokenizer/ before
  training (`load_pretrained(run_dir)` reads them back); "hf" writes a transformers folder
  run_dir/hf/ after training (Llama-shaped models only).
- launch: `launch_pretraining` runs the entry point through shared.train.run_training (this
  process at world size 1, torchrun beyond), records the spec in run_dir/pipeline_config.json
  (refusing a run_dir trained under another spec) and skips a run that already finished.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable, Mapping

import numpy as np
import torch

from shared.data.cache import cache_root
from shared.data.lm_streams import StreamSpec, TokenizerSpec, load_or_train_tokenizer, pack_stream
from shared.data.mixture import Mixture, PiecewiseSchedule
from shared.data.packing import PackedDataset
from shared.eval.perplexity import evaluate_perplexity
from shared.models.flavours import flavour, resolve_model_config
from shared.models.gpt import GPT, GPTConfig
from shared.models.gpt_hf import gpt_to_llama
from shared.train import (History, TrainConfig, Trainer, latest_checkpoint, read_metrics,
                          run_training, seed_everything)
from shared.train.checkpoint import CONFIG_STAMP, MANIFEST, checkpoint_root, stamp_config
from shared.train.config import SHARDED_PARALLELISMS
from shared.train.distributed import barrier, default_device, get_rank, get_world_size
from shared.train.lm import lm_loss
from shared.train.model_files import MODEL_FILE, load_pretrained, save_model_files
from shared.utils.config import StrictConfig

ENTRY_POINT = "shared.pipelines.lm_pretrain:pretrain_entry"
BRANCH_POINTS = "branch_points"
HF_DIR = "hf"
EXPORTS = ("model_files", "hf")
_MEMO: dict[str, Any] = {}          # tokenizers and packed streams shared by the in-process runs of a sweep


# ------------------------------------------------------------------------------------------ specs
@dataclass
class LMDataSpec(StrictConfig):
    """The training data: a tokenizer, named packed streams and their proportions over training."""
    seq_len: int
    tokenizer: TokenizerSpec
    streams: dict[str, StreamSpec]
    mix: dict[str, float] | None = None
    phases: tuple[tuple[float, dict[str, float]], ...] = ()

    def __post_init__(self) -> None:
        if not self.streams:
            raise ValueError("data.streams must name at least one stream")
        for weights in [self.mix or {}] + [w for _, w in self.phases]:
            unknown = sorted(set(weights) - set(self.streams))
            if unknown:
                raise ValueError(f"mixture names unknown streams {unknown}; streams are {sorted(self.streams)}")


@dataclass
class LMEvalSpec(StrictConfig):
    """Perplexity by domain on held-out streams (packed with the run's tokenizer and seq_len)."""
    heldout: dict[str, StreamSpec] = field(default_factory=dict)
    sequences: int = 128
    micro_batch_size: int = 32          # windows per forward pass
    name: str = "val"


@dataclass
class LMPretrainSpec(StrictConfig):
    """One pretraining run (see the module docstring)."""
    model: str | dict[str, Any]
    train: TrainConfig
    data: LMDataSpec
    eval: LMEvalSpec = field(default_factory=LMEvalSpec)
    seed: int = 0
    doc_mask: bool = True
    branch_from: str | None = None
    branch_points: tuple[int, ...] = ()
    export: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.train.global_batch_size is None or self.train.micro_batch_size is None:
            raise ValueError("train needs global_batch_size and micro_batch_size (the mixture draws global batches)")
        unknown = sorted(set(self.export) - set(EXPORTS))
        if unknown:
            raise ValueError(f"unknown export(s) {unknown}; choose from {list(EXPORTS)}")
        if isinstance(self.model, str):
            flavour(self.model)                      # an unknown flavour fails here, naming the known ones


@dataclass
class PreparedData:
    """A run's tokenizer and packed datasets (train streams and held-out domains)."""
    tokenizer: Any
    train: dict[str, PackedDataset]
    heldout: dict[str, PackedDataset]

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    def unique_train_tokens(self) -> int:
        return sum(ds.num_tokens for ds in self.train.values())


@dataclass
class PretrainResult:
    """What `train_lm` returns (on every rank). wall_s / cpu_s: time spent in fit() here."""
    history: History
    trainer: Trainer
    mixture: Mixture
    data: PreparedData
    wall_s: float
    cpu_s: float


# ------------------------------------------------------------------------------------------- model
def gpt_config(model: str | Mapping[str, Any], vocab_size: int) -> GPTConfig:
    """The GPTConfig of a flavour name, {"flavour": name, **overrides} or plain GPTConfig fields,
    with the tokenizer's vocabulary."""
    return resolve_model_config(model, "gpt", vocab_size=vocab_size)


# -------------------------------------------------------------------------------------------- data
def _memo(kind: str, key: Any, build: Callable[[], Any]) -> Any:
    """build() once per process for equal keys."""
    k = kind + json.dumps(key, sort_keys=True, default=str)
    if k not in _MEMO:
        _MEMO[k] = build()
    return _MEMO[k]


def prepare_data(data: LMDataSpec, evals: LMEvalSpec | None = None, prefix: str = "lm") -> PreparedData:
    """Tokenizer, packed training streams and packed held-out domains; collective (rank 0 trains and
    packs what is missing, every rank waits, then opens the folders). Memoised per process."""
    evals = evals or LMEvalSpec()
    streams = dict(data.streams)

    def tokenizer():
        if get_rank() == 0:
            load_or_train_tokenizer(data.tokenizer, streams, prefix)
        barrier()
        return load_or_train_tokenizer(data.tokenizer, streams, prefix)

    where = str(cache_root())                        # a test may point the cache elsewhere
    tok = _memo("tokenizer", [where, prefix, data.tokenizer.to_dict(), {n: s.to_dict() for n, s in streams.items()}],
                tokenizer)

    def packed(named: Mapping[str, StreamSpec]) -> dict[str, PackedDataset]:
        if get_rank() == 0:
            for name, stream in named.items():
                pack_stream(name, stream, tok, data.seq_len, prefix)
        barrier()
        return {name: PackedDataset(pack_stream(name, s, tok, data.seq_len, prefix)) for name, s in named.items()}

    key = [where, prefix, data.seq_len, len(tok), data.tokenizer.to_dict()]
    train = _memo("train", key + [{n: s.to_dict() for n, s in streams.items()}], lambda: packed(streams))
    heldout = _memo("heldout", key + [{n: s.to_dict() for n, s in evals.heldout.items()}],
                    lambda: packed(evals.heldout))
    return PreparedData(tok, train, heldout)


def build_mixture(data: LMDataSpec, streams: Mapping[str, PackedDataset], train: TrainConfig, seed: int) -> Mixture:
    """The rank's Mixture: `phases` (piecewise), else `mix`, else proportional to each stream's tokens."""
    if data.phases:
        schedule = PiecewiseSchedule([(float(p), dict(w)) for p, w in data.phases])
    elif data.mix is not None:
        schedule = dict(data.mix)
    else:
        total = sum(ds.num_tokens for ds in streams.values())
        schedule = {n: ds.num_tokens / total for n, ds in streams.items()}
    return Mixture(dict(streams), schedule, global_batch_size=int(train.global_batch_size),
                   total_steps=train.max_steps, seed=seed, rank=get_rank(), world_size=get_world_size(),
                   micro_batch_size=train.micro_batch_size)


def heldout_perplexity(heldout: Mapping[str, PackedDataset], n_sequences: int, batch_size: int, seed: int = 0):
    """An eval_fn: {"loss": token-weighted mean over domains, "<domain>_loss": mean token loss} on a
    fixed, seeded subset of `n_sequences` windows (seq_len + 1 tokens) of each domain."""
    domains = {}
    for name, ds in heldout.items():
        idx = np.sort(np.random.default_rng([seed, len(ds)]).choice(len(ds), min(n_sequences, len(ds)), replace=False))
        domains[name] = [ds.get_batch(idx[i:i + batch_size]) for i in range(0, len(idx), batch_size)]

    def evaluate(model) -> dict[str, float]:
        res = evaluate_perplexity(model, domains, batch_size=batch_size)
        out = {f"{k}_loss": r.mean_loss for k, r in res.items()}
        out["loss"] = sum(r.mean_loss * r.tokens for r in res.values()) / sum(r.tokens for r in res.values())
        return out

    return evaluate


# ----------------------------------------------------------------------------------------- one run
def train_lm(spec: LMPretrainSpec, run_dir: str | Path, *,
             extra_evals: Callable[[Any, LMPretrainSpec], Mapping[str, Callable]] | None = None,
             prefix: str = "lm") -> PretrainResult:
    """Train one run into run_dir (one rank of a launch; see the module docstring)."""
    run_dir = str(run_dir)
    data = prepare_data(spec.data, spec.eval, prefix)
    seed_everything(spec.seed)                       # the initial weights depend on the seed only
    # FSDP on several ranks: built on the meta device, sharded, then each rank materialises and
    # initialises only its shards (shared.train.distributed.materialize); otherwise built on the
    # training device, so a 7B model is never materialised in host memory once per rank
    meta = spec.train.parallelism in SHARDED_PARALLELISMS and get_world_size() > 1
    with torch.device("meta" if meta else default_device(spec.train.device)):
        model = GPT(gpt_config(spec.model, data.vocab_size))
    if model.cfg.max_seq_len < spec.data.seq_len:
        raise ValueError(f"model max_seq_len {model.cfg.max_seq_len} < data seq_len {spec.data.seq_len}")
    if "hf" in spec.export and not model.cfg.is_llama_shaped:
        raise ValueError("export 'hf' needs a Llama-shaped model (rope, rmsnorm, swiglu, no bias)")
    if "model_files" in spec.export and get_rank() == 0:
        save_model_files(run_dir, model, data.tokenizer)     # the config and tokenizer only
    mixture = build_mixture(spec.data, data.train, spec.train, spec.seed)
    resume = "latest"
    if latest_checkpoint(run_dir) is None and spec.branch_from:
        resume = str(spec.branch_from)
    cfg = dataclasses.replace(spec.train, run_dir=run_dir, resume=resume, seed=spec.seed)
    eval_fns: dict[str, Callable] = {}
    if data.heldout:
        eval_fns[spec.eval.name] = heldout_perplexity(data.heldout, spec.eval.sequences, spec.eval.micro_batch_size)
    if extra_evals is not None:
        eval_fns.update(extra_evals(data.tokenizer, spec))
    loss = lm_loss if spec.doc_mask else functools.partial(lm_loss, use_doc_mask=False)
    trainer = Trainer(model, loss, mixture, cfg, eval_fns=eval_fns)
    start, cpu_start = time.perf_counter(), time.process_time()
    for step in sorted(int(s) for s in spec.branch_points):
        if not 0 < step < cfg.max_steps:
            continue
        trainer.fit(until_step=step)                  # checkpoints at `step`, as a preempted run would
        keep_branch_point(run_dir, step)
        evaluated = any(r.get("kind") == "eval" and r.get("step") == step for r in trainer.history.records)
        if trainer.step == step and not evaluated:
            trainer.evaluate()                        # the metrics every branch starts from
    history = trainer.fit()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    if "hf" in spec.export:
        if get_rank() == 0:
            export_hf(model, data.tokenizer, Path(run_dir) / HF_DIR)
        barrier()
    return PretrainResult(history, trainer, mixture, data, wall, cpu)


def pretrain_entry(config: dict, run_dir: str) -> None:
    """shared.train.run_training entry point: `train_lm(LMPretrainSpec.from_dict(config), run_dir)`."""
    train_lm(LMPretrainSpec.from_dict(config), run_dir)


# ----------------------------------------------------------------------------- branches and resume
def branch_point_dir(run_dir: str | Path, step: int) -> Path:
    """Where a run keeps its checkpoint of `step` for branches (outside checkpoints/, so the
    trainer's keep_last_n pruning never removes it)."""
    return Path(run_dir) / BRANCH_POINTS / f"step_{step:08d}"


def keep_branch_point(run_dir: str | Path, step: int) -> Path:
    """Hard-link (or copy) the checkpoint of `step` to branch_point_dir; collective (rank 0 works,
    every rank waits). Idempotent; published by a rename, so a partial copy is never used."""
    dest = branch_point_dir(run_dir, step)
    if get_rank() == 0 and not (dest / MANIFEST).exists():
        src = checkpoint_root(run_dir) / f"step_{step:08d}"
        if not (src / MANIFEST).exists():
            raise RuntimeError(f"no complete checkpoint {src} to keep as the branch point of step {step}")
        tmp = dest.with_name(f".tmp-{dest.name}-{uuid.uuid4().hex[:8]}")
        for f in sorted(src.rglob("*")):
            if f.is_file():
                target = tmp / f.relative_to(src)
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(f, target)
                except OSError:
                    shutil.copy2(f, target)
        os.replace(tmp, dest)
    barrier()
    return dest


def is_finished(run_dir: str | Path, max_steps: int) -> bool:
    """Whether run_dir holds a checkpoint at max_steps or later."""
    ckpt = latest_checkpoint(run_dir) if Path(run_dir).exists() else None
    return ckpt is not None and int(ckpt.name.split("_")[1]) >= max_steps


def own_train_seconds(run_dir: str | Path, resumed_from: str | None = None) -> float:
    """Seconds a run spent in its own optimizer steps (the trainer's elapsed_s, which leaves out
    evaluation, checkpoints and setup), less what the checkpoint it branched from had spent."""
    train = [r for r in read_metrics(run_dir) if r.get("kind") == "train"] if Path(run_dir).exists() else []
    end = float(train[-1]["elapsed_s"]) if train else 0.0
    start = 0.0
    if resumed_from:
        state = torch.load(Path(resumed_from) / "trainer_state.pt", map_location="cpu", weights_only=True)
        start = float(state["trainer"]["elapsed_s"])
    return end - start


def launch_pretraining(config: Mapping[str, Any], run_dir: str | Path, *, entry_point: str = ENTRY_POINT,
                       nproc_per_node: int = 1, nnodes: int = 1, rdzv_endpoint: str | None = None) -> bool:
    """Stamp run_dir with `config` and train it unless it already finished; True if it trained.

    `config` is what `entry_point(config, run_dir)` reads (an LMPretrainSpec dict for the default
    entry point); its "train" holds max_steps. Multi-node: run the same call on every node with
    rdzv_endpoint "host:port" (or MASTER_ADDR / MASTER_PORT set)."""
    if nnodes > 1 and rdzv_endpoint is None and os.environ.get("MASTER_ADDR"):
        rdzv_endpoint = f"{os.environ['MASTER_ADDR']}:{os.environ.get('MASTER_PORT', '29500')}"
    stamp_config(run_dir, config)
    if is_finished(run_dir, int(config["train"]["max_steps"])):
        return False
    run_training(entry_point, dict(config), run_dir=run_dir, nproc_per_node=nproc_per_node, nnodes=nnodes,
                 rdzv_endpoint=rdzv_endpoint)
    return True


# ------------------------------------------------------------------------------------------ export
def export_hf(model: GPT, tokenizer, folder: str | Path) -> Path:
    """Save a Llama-shaped GPT as a transformers LlamaForCausalLM folder with its tokenizer."""
    folder = Path(folder)
    gpt_to_llama(model).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


__all__ = ["CONFIG_STAMP", "BRANCH_POINTS", "ENTRY_POINT", "EXPORTS", "HF_DIR", "LMDataSpec", "LMEvalSpec", "LMPretrainSpec",
           "MODEL_FILE", "PreparedData", "PretrainResult", "branch_point_dir", "build_mixture", "export_hf",
           "gpt_config", "heldout_perplexity", "is_finished", "keep_branch_point", "launch_pretraining",
           "load_pretrained", "own_train_seconds", "prepare_data", "pretrain_entry", "save_model_files",
           "stamp_config", "train_lm"]
