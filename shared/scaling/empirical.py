"""Train a grid of decoder LMs over model sizes x tokens per parameter and collect their held-out losses.

The empirical part of Sardana et al. 2024 (arXiv 2401.00448, §4): MPT-style decoders of several sizes, each
trained from scratch once per tokens-per-parameter ratio (a separate cosine run per point, as the paper
did), and the final loss of every run, to fit L(N, D) = E + A/N^alpha + B/D^beta (shared.scaling.fit).

    grid = GridConfig.from_dict(preset["grid"])
    data = prepare_corpora({"python_docs": None, "code_stdlib": None}, vocab_size=512, seq_len=64)
    plan = plan_grid(grid, data.vocab_size)            # every (size, ratio, seed), with skipped ones marked
    results = run_grid(grid, data, out_dir)            # list of dicts, one per trained run

Each run goes through shared.train.run_training (in this process, or under torchrun with nproc_per_node /
nnodes) with `train_entry` as entry point, and writes `result.json` into its own folder
`<out_dir>/runs/<size>-r<ratio>-s<seed>-<hash>`; a run whose result exists is not trained again.

Conventions
- N ("params") is the non-embedding parameter count (Kaplan et al.) or the total count (Hoffmann et al.;
  the paper's CSV counts "Parameters" so), per `GridConfig.param_count`.
- A run at ratio r trains steps = max(1, round(r N / (batch_size seq_len))) optimizer steps of batch_size
  packed sequences; its `tokens` is the exact number trained on (steps x batch_size x seq_len), so its
  actual ratio differs from r by rounding, most at r ~ 1 where a run is a few steps.
- A run whose training FLOPs (flops_per_token x tokens, PaLM accounting) exceed `max_run_flops` is planned
  but skipped, with the reason recorded, so a figure can say which ratios a size could not reach.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

ENTRY_POINT = "shared.scaling.empirical:train_entry"
# MPT (llm-foundry mpt_causal_lm): ALiBi, LayerNorm, GELU MLP with 4x expansion, no biases, tied embeddings.
MPT_STYLE = {"position": "alibi", "norm": "layernorm", "mlp": "gelu", "bias": False, "tie_embeddings": True}
PARAM_COUNTS = ("non_embedding", "total")


@dataclass(frozen=True)
class ModelSize:
    """One model size of the grid. batch_size: sequences per optimizer step (global); lr: peak LR;
    tokens_per_param: this size's ratios (None: the grid's); micro_batch_size: per-rank micro-batch."""
    name: str
    n_layer: int
    d_model: int
    n_head: int
    batch_size: int
    lr: float
    tokens_per_param: tuple[float, ...] | None = None
    micro_batch_size: int | None = None

    def __post_init__(self):
        if min(self.n_layer, self.d_model, self.n_head, self.batch_size) < 1 or self.lr <= 0:
            raise ValueError(f"size {self.name!r}: n_layer, d_model, n_head, batch_size and lr must be > 0")
        if self.tokens_per_param is not None:
            object.__setattr__(self, "tokens_per_param", tuple(float(r) for r in self.tokens_per_param))


@dataclass
class GridConfig:
    """The experiment: sizes x tokens-per-parameter ratios, and how every run trains.

    noise_runs: [[size, ratio], ...] points trained again with `noise_seeds` extra seeds (seed+1, ...) to
    measure seed-to-seed spread. Optimisation follows llm-foundry's MPT recipes: AdamW betas (0.9, 0.95),
    cosine to alpha_f x peak, gradient clipping at 1; warmup = min(max_warmup_steps, ceil(warmup_fraction x
    steps)) steps.
    """
    sizes: list[ModelSize]
    tokens_per_param: tuple[float, ...] = (1, 3, 10, 30, 100, 300, 1000)
    seq_len: int = 64
    arch: dict = field(default_factory=lambda: dict(MPT_STYLE))
    param_count: str = "non_embedding"
    max_run_flops: float | None = None
    seed: int = 0
    noise_runs: list = field(default_factory=list)
    noise_seeds: int = 0
    warmup_fraction: float = 0.1
    max_warmup_steps: int = 100
    alpha_f: float = 0.1
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    precision: str = "bf16"
    parallelism: str = "none"
    eval_sequences: int = 128          # held-out sequences per domain (the same for every run)
    eval_batch_size: int = 32
    log_every: int = 0                 # 0: about 50 train records per run
    checkpoint_every: int = 0
    checkpoint_at_end: bool = False

    def __post_init__(self):
        self.sizes = [s if isinstance(s, ModelSize) else ModelSize(**s) for s in self.sizes]
        names = [s.name for s in self.sizes]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"sizes need distinct names, got {names}")
        self.tokens_per_param = tuple(float(r) for r in self.tokens_per_param)
        self.betas = tuple(self.betas)
        if self.param_count not in PARAM_COUNTS:
            raise ValueError(f"param_count={self.param_count!r}; valid choices: {', '.join(PARAM_COUNTS)}")
        for size in self.sizes:
            if any(r <= 0 for r in self.ratios(size)):
                raise ValueError(f"tokens_per_param must be > 0 for size {size.name!r}")
        for point in self.noise_runs:
            if len(point) != 2 or point[0] not in names:
                raise ValueError(f"noise_runs entries are [size name, ratio] with a size in {names}; got {point}")

    def ratios(self, size: ModelSize) -> tuple[float, ...]:
        return size.tokens_per_param if size.tokens_per_param is not None else self.tokens_per_param

    def size(self, name: str) -> ModelSize:
        for s in self.sizes:
            if s.name == name:
                return s
        raise ValueError(f"unknown size {name!r}; sizes: {[s.name for s in self.sizes]}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "GridConfig":
        valid = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - valid)
        if unknown:
            raise ValueError(f"unknown GridConfig keys {unknown}; valid keys: {sorted(valid)}")
        return cls(**dict(d))

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))


def gpt_config(size: ModelSize, grid: GridConfig, vocab_size: int):
    """The GPTConfig of a size."""
    from shared.models.gpt import GPTConfig

    return GPTConfig(vocab_size=vocab_size, n_layer=size.n_layer, n_head=size.n_head, d_model=size.d_model,
                     max_seq_len=grid.seq_len, **grid.arch)


def count_params(size: ModelSize, grid: GridConfig, vocab_size: int) -> dict[str, float]:
    """{"non_embedding", "total", "flops_per_token"} of a size. Large models are built on the meta device (no
    memory); small ones on the CPU (the meta device's first use imports torch._refs, seconds)."""
    import torch

    from shared.models.gpt import GPT

    rough = 12 * size.n_layer * size.d_model ** 2 + vocab_size * size.d_model
    with torch.device("meta" if rough > 5e7 else "cpu"):
        model = GPT(gpt_config(size, grid, vocab_size))
    return {"non_embedding": model.num_params(exclude_embeddings=True), "total": model.num_params(),
            "flops_per_token": float(model.flops_per_token())}


@dataclass(frozen=True)
class GridRun:
    """One planned run. tokens = steps x batch_size x seq_len (exact); params per the grid's param_count."""
    size: str
    target_ratio: float
    seed: int
    steps: int
    tokens: int
    params: int
    non_embedding_params: int
    total_params: int
    flops: float                      # training FLOPs of the run (PaLM accounting)
    batch_size: int
    lr: float
    noise_replicate: bool = False
    skipped: str = ""

    @property
    def tokens_per_param(self) -> float:
        return self.tokens / self.params

    @property
    def name(self) -> str:
        return f"{self.size}-r{self.target_ratio:g}-s{self.seed}"

    def as_dict(self) -> dict:
        return dataclasses.asdict(self) | {"tokens_per_param": self.tokens_per_param, "name": self.name}


def plan_grid(grid: GridConfig, vocab_size: int) -> list[GridRun]:
    """Every run of the grid in order (size, ratio, then the noise replicates), skipped ones marked."""
    runs = []
    counts = {s.name: count_params(s, grid, vocab_size) for s in grid.sizes}
    points = [(s, r, grid.seed, False) for s in grid.sizes for r in grid.ratios(s)]
    points += [(grid.size(name), float(r), grid.seed + k, True)
               for name, r in grid.noise_runs for k in range(1, grid.noise_seeds + 1)]
    for size, ratio, seed, replicate in points:
        c = counts[size.name]
        params = int(c[grid.param_count])
        per_step = size.batch_size * grid.seq_len
        steps = max(1, int(round(ratio * params / per_step)))
        flops = c["flops_per_token"] * steps * per_step
        skipped = ""
        if grid.max_run_flops is not None and flops > grid.max_run_flops:
            skipped = f"{flops:.3g} training FLOPs > the per-run cap max_run_flops={grid.max_run_flops:.3g}"
        runs.append(GridRun(size.name, float(ratio), int(seed), steps, steps * per_step, params,
                            int(c["non_embedding"]), int(c["total"]), flops, size.batch_size, size.lr,
                            replicate, skipped))
    return runs


# ------------------------------------------------------------------------------------------------- data
@dataclass
class DataSpec:
    """Packed data of the experiment (folders of shared.data.packing). train/val: {domain: folder}."""
    train: dict[str, str]
    val: dict[str, str]
    vocab_size: int
    seq_len: int
    tokenizer: str = ""

    def streams(self, split: str = "train") -> dict:
        from shared.data.packing import PackedDataset

        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        return {name: PackedDataset(folder) for name, folder in getattr(self, split).items()}

    def unique_train_tokens(self) -> int:
        return sum(ds.num_tokens for ds in self.streams("train").values())

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def prepare_corpora(corpora: Mapping[str, int | None], vocab_size: int, seq_len: int, seed: int = 0,
                    tokenizer_docs: int | None = 100) -> DataSpec:
    """Offline corpora (shared.data.corpora names -> max train documents, None = all), a byte-level BPE
    trained on up to `tokenizer_docs` documents of each, and their train and test splits packed (cached)."""
    from shared.data.packing import packed_corpus
    from shared.data.tokenizer import corpus_tokenizer

    tok = corpus_tokenizer(list(corpora), vocab_size=vocab_size, seed=seed, max_docs=tokenizer_docs)
    train = {n: str(packed_corpus(n, tok, seq_len, "train", max_docs=m, seed=seed).folder) for n, m in corpora.items()}
    val = {n: str(packed_corpus(n, tok, seq_len, "test", seed=seed).folder) for n in corpora}
    return DataSpec(train, val, len(tok), seq_len, tokenizer=f"corpus_tokenizer({list(corpora)}, {vocab_size})")


def prepare_data_dir(data_dir: str | Path, seq_len: int, packed_dir: str | Path | None = None,
                     text_field: str = "text") -> DataSpec:
    """Full scale: `<data_dir>/tokenizer/` (a saved tokenizer, e.g. EleutherAI/gpt-neox-20b as MPT used),
    `<data_dir>/train/<domain>/` and `<data_dir>/val/<domain>/` (jsonl / parquet / text files; a split
    folder holding files directly is one domain, "data"), packed once into `packed_dir` (default
    `<data_dir>/packed-<seq_len>`)."""
    from shared.data.packing import tokenize_data_dir, tokenizer_fingerprint
    from shared.data.tokenizer import load_tokenizer

    data_dir = Path(data_dir)
    for sub in ("tokenizer", "train", "val"):
        if not (data_dir / sub).is_dir():
            raise FileNotFoundError(f"{data_dir / sub} not found: data_dir needs tokenizer/, train/ and val/")
    tok = load_tokenizer(data_dir / "tokenizer")
    packed = Path(packed_dir or data_dir / f"packed-{seq_len}") / tokenizer_fingerprint(tok)
    spec = {}
    for split in ("train", "val"):
        root = data_dir / split
        domains = sorted(p for p in root.iterdir() if p.is_dir()) or [root]
        spec[split] = {(d.name if d != root else "data"): str(tokenize_data_dir(
            d, tok, seq_len, packed / split / (d.name if d != root else "data"), text_field=text_field))
            for d in domains}
    return DataSpec(spec["train"], spec["val"], len(tok), seq_len, tokenizer=str(data_dir / "tokenizer"))


def heldout_eval(data: DataSpec, n_sequences: int, batch_size: int, seed: int = 0):
    """An eval_fn: {"loss": token-weighted mean over domains, "<domain>_loss": ...} on a fixed, seeded
    subset of `n_sequences` held-out sequences per domain (the same for every run of a grid)."""
    import numpy as np

    from shared.eval.perplexity import evaluate_perplexity

    domains = {}
    for name, ds in data.streams("val").items():
        idx = np.sort(np.random.default_rng([seed, len(ds)]).choice(len(ds), min(n_sequences, len(ds)), replace=False))
        domains[name] = [ds.get_batch(idx[i:i + batch_size]) for i in range(0, len(idx), batch_size)]

    def evaluate(model) -> dict[str, float]:
        res = evaluate_perplexity(model, domains, batch_size=batch_size)
        out = {f"{k}_loss": r.mean_loss for k, r in res.items()}
        out["loss"] = sum(r.mean_loss * r.tokens for r in res.values()) / sum(r.tokens for r in res.values())
        return out

    return evaluate


# ---------------------------------------------------------------------------------------------- one run
def train_entry(config: dict, run_dir: str) -> None:
    """run_training entry point: train one GridRun and write `result.json` (rank 0).

    config: {"run": GridRun fields, "grid": GridConfig.to_dict(), "data": DataSpec.as_dict()}. Training does
    not mask attention at document boundaries (MPT's default); the loss skips each document's first token.
    """
    import functools

    from shared.data.mixture import Mixture
    from shared.models.gpt import GPT
    from shared.train import TrainConfig, Trainer, seed_everything
    from shared.train.distributed import get_rank, get_world_size
    from shared.train.lm import lm_loss

    grid = GridConfig.from_dict(config["grid"])
    data = DataSpec(**config["data"])
    run = GridRun(**{k: v for k, v in config["run"].items() if k in {f.name for f in dataclasses.fields(GridRun)}})
    size = grid.size(run.size)
    streams = data.streams("train")
    weights = {n: ds.num_tokens for n, ds in streams.items()}          # a natural mix: streams drain evenly
    total = sum(weights.values())
    mixture = Mixture(streams, {n: w / total for n, w in weights.items()}, global_batch_size=size.batch_size,
                      total_steps=run.steps, seed=run.seed, rank=get_rank(), world_size=get_world_size(),
                      micro_batch_size=size.micro_batch_size)
    seed_everything(run.seed)                                           # initial weights depend on the seed
    model = GPT(gpt_config(size, grid, data.vocab_size))
    warmup = max(1, min(grid.max_warmup_steps, math.ceil(grid.warmup_fraction * run.steps)))
    cfg = TrainConfig(
        max_steps=run.steps, global_batch_size=size.batch_size,
        micro_batch_size=size.micro_batch_size or size.batch_size // get_world_size(),
        lr=run.lr, betas=grid.betas, weight_decay=grid.weight_decay, schedule="cosine",
        warmup_steps=min(warmup, run.steps), alpha_f=grid.alpha_f, grad_clip=grid.grad_clip,
        precision=grid.precision, parallelism=grid.parallelism,
        log_every=grid.log_every or max(1, run.steps // 50), checkpoint_every=grid.checkpoint_every,
        checkpoint_at_end=grid.checkpoint_at_end, run_dir=run_dir, seed=run.seed, progress_bar=False)
    evaluate = heldout_eval(data, grid.eval_sequences, grid.eval_batch_size)
    trainer = Trainer(model, functools.partial(lm_loss, use_doc_mask=False), mixture, cfg, eval_fns={"val": evaluate})
    start, cpu_start = time.perf_counter(), time.process_time()
    history = trainer.fit()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    if get_rank() != 0:
        return
    final = history.eval[-1]
    epochs = max(int(c) / len(s) for c, s in zip(mixture.counts, mixture.streams))
    train_losses = [r["loss"] for r in history.train]
    result = run.as_dict() | {
        "val_loss": final["val/loss"],
        **{k.removeprefix("val/"): v for k, v in final.items() if k.startswith("val/") and k != "val/loss"},
        "train_loss_last": train_losses[-1] if train_losses else None, "epochs": epochs,
        "warmup_steps": cfg.warmup_steps, "wall_s": wall, "cpu_s": cpu, "tokens_per_s": run.tokens / max(wall, 1e-9),
        "world_size": get_world_size()}
    Path(run_dir, "result.json").write_text(json.dumps(result, indent=1))


# --------------------------------------------------------------------------------------------- the grid
def run_dir_for(run: GridRun, grid: GridConfig, data: DataSpec, out_dir: str | Path) -> Path:
    """<out_dir>/runs/<name>-<hash of everything the run depends on>: a changed config never reuses a result."""
    from shared.data.cache import stable_hash

    key = stable_hash({"run": run.as_dict(), "grid": grid.to_dict(), "data": data.as_dict()}, 8)
    return Path(out_dir) / "runs" / f"{run.name}-{key}"


def run_grid(grid: GridConfig, data: DataSpec, out_dir: str | Path, *, nproc_per_node: int = 1, nnodes: int = 1,
             rdzv_endpoint: str | None = None, log: Callable[[str], None] | None = print) -> list[dict]:
    """Train every planned, non-skipped run (reusing finished ones) and return their result dicts, in plan
    order."""
    from shared.train import run_training

    results = []
    plan = [r for r in plan_grid(grid, data.vocab_size) if not r.skipped]
    for i, run in enumerate(plan):
        run_dir = run_dir_for(run, grid, data, out_dir)
        result_file = run_dir / "result.json"
        if not result_file.exists():
            config = {"run": run.as_dict(), "grid": grid.to_dict(), "data": data.as_dict()}
            run_training(ENTRY_POINT, config, run_dir=run_dir, nproc_per_node=nproc_per_node, nnodes=nnodes,
                         rdzv_endpoint=rdzv_endpoint)
            if not result_file.exists():
                raise RuntimeError(f"run {run.name} finished without writing {result_file}")
            reused = ""
        else:
            reused = " (reused)"
        result = json.loads(result_file.read_text()) | {"run_dir": str(run_dir)}
        results.append(result)
        if log is not None:
            log(f"[{i + 1}/{len(plan)}] {run.name}: {run.steps} steps, {run.tokens:,} tokens "
                f"({run.tokens_per_param:.3g} tok/param), val loss {result['val_loss']:.4f}, "
                f"{result['wall_s']:.1f}s{reused}")
    return results


__all__ = ["ENTRY_POINT", "MPT_STYLE", "PARAM_COUNTS", "ModelSize", "GridConfig", "GridRun", "DataSpec",
           "gpt_config", "count_params", "plan_grid", "prepare_corpora", "prepare_data_dir", "heldout_eval",
           "train_entry", "run_dir_for", "run_grid"]
