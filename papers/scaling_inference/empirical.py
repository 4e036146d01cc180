"""Train a grid of decoder LMs over model sizes x tokens per parameter and collect their held-out losses.

The empirical part of Sardana et al. 2024 (arXiv 2401.00448, §4): MPT-style decoders of several sizes, each
trained from scratch once per tokens-per-parameter ratio (a separate cosine run per point, as the paper
did), and the final loss of every run, to fit L(N, D) = E + A/N^alpha + B/D^beta (shared.scaling.fit).

    spec = scales.NOTEBOOKS["empirical"].build("smoke")          # an EmpiricalSpec (a GridConfig and more)
    grid = spec.grid(seed=0)
    data = prepare_corpora({"python_docs": None, "code_stdlib": None}, vocab_size=512, seq_len=64)
    plan = plan_grid(grid, data.vocab_size)            # every (size, ratio, seed), with skipped ones marked
    results = run_grid(grid, data, out_dir)            # list of dicts, one per trained run

Each run is one shared.pipelines.lm_pretrain run (packed streams in their natural proportions, an
MPT-style GPT, held-out perplexity by domain as the "val" eval), launched through
shared.train.run_training (in this process, or under torchrun with nproc_per_node / nnodes) with
`train_entry` as entry point; it writes `result.json` into its own folder
`<out_dir>/runs/<size>-r<ratio>-s<seed>-<hash>`; a run whose result exists is not trained again.

Conventions
- N ("params") is the non-embedding parameter count (Kaplan et al.) or the total count (Hoffmann et al.;
  the paper's CSV counts "Parameters" so), per `GridConfig.param_count`.
- A run at ratio r trains steps = max(1, round(r N / (global_batch_size seq_len))) optimizer steps of
  global_batch_size packed sequences; its `tokens` is the exact number trained on (steps x
  global_batch_size x seq_len), so its
  actual ratio differs from r by rounding, most at r ~ 1 where a run is a few steps.
- A run whose training FLOPs (flops_per_token x tokens, PaLM accounting) exceed `max_run_flops` is planned
  but skipped, with the reason recorded, so a figure can say which ratios a size could not reach.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable, Mapping

import torch

from shared.data.cache import stable_hash
from shared.data.lm_streams import StreamSpec, TokenizerSpec
from shared.models.gpt import GPT, GPTConfig
from shared.pipelines.lm_pretrain import LMDataSpec, LMEvalSpec, LMPretrainSpec, PreparedData, prepare_data, train_lm
from shared.train import TrainConfig, run_training
from shared.train.distributed import get_rank, get_world_size
from shared.utils.config import StrictConfig

ENTRY_POINT = "papers.scaling_inference.empirical:train_entry"
DATA_PREFIX = "empirical"          # cache-folder prefix of this experiment's tokenizers and packed streams
# MPT (llm-foundry mpt_causal_lm): ALiBi, LayerNorm, GELU MLP with 4x expansion, no biases, tied embeddings.
MPT_STYLE = {"position": "alibi", "norm": "layernorm", "mlp": "gelu", "bias": False, "tie_embeddings": True}
PARAM_COUNTS = ("non_embedding", "total")
FIT_LOSSES = ("val_loss", "train_loss_smoothed")
SMOOTH_FRACTION = 0.01             # train_loss_smoothed: mean of the train losses logged in the last 1% of steps


@dataclass(frozen=True)
class ModelSize:
    """One model size of the grid. global_batch_size: sequences per optimizer step; lr: peak LR;
    tokens_per_param: this size's ratios (None: the grid's); micro_batch_size: per-rank micro-batch."""
    name: str
    n_layer: int
    d_model: int
    n_head: int
    global_batch_size: int
    lr: float
    tokens_per_param: tuple[float, ...] | None = None
    micro_batch_size: int | None = None

    def __post_init__(self):
        if min(self.n_layer, self.d_model, self.n_head, self.global_batch_size) < 1 or self.lr <= 0:
            raise ValueError(f"size {self.name!r}: n_layer, d_model, n_head, global_batch_size and lr must be > 0")
        if self.tokens_per_param is not None:
            object.__setattr__(self, "tokens_per_param", tuple(float(r) for r in self.tokens_per_param))


@dataclass
class GridConfig(StrictConfig):
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

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))


@dataclass
class EmpiricalSpec(GridConfig):
    """The empirical notebook's config: the grid (GridConfig fields), the analysis thresholds and the
    smoke-scale data (offline corpora -> max train documents, None = all; a BPE of vocab_size trained
    on up to tokenizer_docs documents of each). Full scale reads data_dir instead (prepare_data_dir).

    ref_ratio: the "typical" ratio the loss at each size's largest ratio is compared with;
    typical_cutoff: the ablation fits on ratios <= this and extrapolates above; fit_min_ratio: fits
    use ratios >= this; noise_sigmas: "beyond seed noise" means more than this many seed std.
    fit_loss: the loss every run is analysed by: "val_loss" (held-out) or "train_loss_smoothed" (the
    final training loss averaged over the last SMOOTH_FRACTION of steps, as the paper's CSV reports)."""
    ref_ratio: float = 100.0
    typical_cutoff: float = 100.0
    fit_min_ratio: float = 10.0
    noise_sigmas: float = 2.0
    fit_loss: str = "val_loss"
    corpora: dict[str, int | None] = field(default_factory=dict)
    vocab_size: int = 512
    tokenizer_docs: int | None = 100
    needs_data_dir: bool = False

    def __post_init__(self):
        super().__post_init__()
        if self.fit_loss not in FIT_LOSSES:
            raise ValueError(f"fit_loss={self.fit_loss!r}; valid choices: {', '.join(FIT_LOSSES)}")

    def grid(self, seed: int) -> GridConfig:
        """The GridConfig part, with the notebook's seed."""
        names = {f.name for f in dataclasses.fields(GridConfig)}
        return GridConfig.from_dict({k: v for k, v in self.to_dict().items() if k in names} | {"seed": int(seed)})


def gpt_config(size: ModelSize, grid: GridConfig, vocab_size: int):
    """The GPTConfig of a size."""
    return GPTConfig(vocab_size=vocab_size, n_layer=size.n_layer, n_head=size.n_head, d_model=size.d_model,
                     max_seq_len=grid.seq_len, **grid.arch)


def count_params(size: ModelSize, grid: GridConfig, vocab_size: int) -> dict[str, float]:
    """{"non_embedding", "total", "flops_per_token"} of a size. Large models are built on the meta device (no
    memory); small ones on the CPU (the meta device's first use imports torch._refs, seconds)."""
    rough = 12 * size.n_layer * size.d_model ** 2 + vocab_size * size.d_model
    with torch.device("meta" if rough > 5e7 else "cpu"):
        model = GPT(gpt_config(size, grid, vocab_size))
    return {"non_embedding": model.num_params(exclude_embeddings=True), "total": model.num_params(),
            "flops_per_token": float(model.flops_per_token())}


@dataclass(frozen=True)
class GridRun:
    """One planned run. tokens = steps x batch_size x seq_len (exact; batch_size: the size's
    global_batch_size); params per the grid's param_count."""
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
        per_step = size.global_batch_size * grid.seq_len
        steps = max(1, int(round(ratio * params / per_step)))
        flops = c["flops_per_token"] * steps * per_step
        skipped = ""
        if grid.max_run_flops is not None and flops > grid.max_run_flops:
            skipped = f"{flops:.3g} training FLOPs > the per-run cap max_run_flops={grid.max_run_flops:.3g}"
        runs.append(GridRun(size.name, float(ratio), int(seed), steps, steps * per_step, params,
                            int(c["non_embedding"]), int(c["total"]), flops, size.global_batch_size, size.lr,
                            replicate, skipped))
    return runs



# ------------------------------------------------------------------------------------------------- data
@dataclass
class GridData:
    """The experiment's data as pipeline specs: training streams (mixed in proportion to their
    tokens) and the held-out domains every run is evaluated on. Opening it (prepare) trains the
    tokenizer and packs the streams once (cached)."""
    data: LMDataSpec
    heldout: dict[str, StreamSpec]
    tokenizer: str = ""

    def prepare(self) -> PreparedData:
        return prepare_data(self.data, LMEvalSpec(heldout=self.heldout), prefix=DATA_PREFIX)

    @property
    def vocab_size(self) -> int:
        return self.prepare().vocab_size

    @property
    def seq_len(self) -> int:
        return self.data.seq_len

    def unique_train_tokens(self) -> int:
        return self.prepare().unique_train_tokens()

    def as_dict(self) -> dict:
        return {"data": self.data.to_dict(), "heldout": {n: s.to_dict() for n, s in self.heldout.items()},
                "tokenizer": self.tokenizer}

    @classmethod
    def from_dict(cls, d: Mapping) -> GridData:
        return cls(LMDataSpec.from_dict(d["data"]), {n: StreamSpec.from_dict(s) for n, s in d["heldout"].items()},
                   d.get("tokenizer", ""))


def prepare_corpora(corpora: Mapping[str, int | None], vocab_size: int, seq_len: int, seed: int = 0,
                    tokenizer_docs: int | None = 100) -> GridData:
    """Offline corpora (shared.data.corpora names -> max train documents, None = all), a byte-level BPE
    trained on up to `tokenizer_docs` documents of each, their train splits as the training streams and
    their test splits as the held-out domains."""
    names = list(corpora)
    data = LMDataSpec(seq_len=seq_len,
                      tokenizer=TokenizerSpec(vocab_size=vocab_size, corpora=tuple(names), max_docs=tokenizer_docs,
                                              seed=seed),
                      streams={n: StreamSpec(corpora=({"name": n, "max_docs": m, "seed": seed},))
                               for n, m in corpora.items()})
    heldout = {n: StreamSpec(corpora=({"name": n, "seed": seed},), split="test") for n in names}
    grid_data = GridData(data, heldout, tokenizer=f"corpus_tokenizer({names}, {vocab_size})")
    grid_data.prepare()
    return grid_data


def prepare_data_dir(data_dir: str | Path, seq_len: int, packed_dir: str | Path | None = None,
                     text_field: str = "text") -> GridData:
    """Full scale: `<data_dir>/tokenizer/` (a saved tokenizer, e.g. EleutherAI/gpt-neox-20b as MPT used),
    `<data_dir>/train/<domain>/` and `<data_dir>/val/<domain>/` (jsonl / parquet / text files; a split
    folder holding files directly is one domain, "data"), packed once into `packed_dir` (default
    `<data_dir>/packed-<seq_len>`; delete it after changing the tokenizer)."""
    data_dir = Path(data_dir)
    for sub in ("tokenizer", "train", "val"):
        if not (data_dir / sub).is_dir():
            raise FileNotFoundError(f"{data_dir / sub} not found: data_dir needs tokenizer/, train/ and val/")
    packed = Path(packed_dir or data_dir / f"packed-{seq_len}")
    streams = {}
    for split in ("train", "val"):
        root = data_dir / split
        domains = sorted(p for p in root.iterdir() if p.is_dir()) or [root]
        streams[split] = {(d.name if d != root else "data"): StreamSpec(
            path=str(d), packed_dir=str(packed / split / (d.name if d != root else "data")), text_field=text_field)
            for d in domains}
    data = LMDataSpec(seq_len=seq_len, tokenizer=TokenizerSpec(path=str(data_dir / "tokenizer")),
                      streams=streams["train"])
    grid_data = GridData(data, streams["val"], tokenizer=str(data_dir / "tokenizer"))
    grid_data.prepare()
    return grid_data


# ---------------------------------------------------------------------------------------------- one run
def run_spec(run: GridRun, grid: GridConfig, data: GridData, world_size: int = 1) -> LMPretrainSpec:
    """The pipeline run of one GridRun: an MPT-style GPT of the size, trained on the natural mix, with
    the grid's optimisation (warmup = min(max_warmup_steps, ceil(warmup_fraction x steps)) steps) and
    held-out perplexity by domain. Attention is not masked at document boundaries (MPT's default);
    the loss skips each document's first token."""
    size = grid.size(run.size)
    warmup = max(1, min(grid.max_warmup_steps, math.ceil(grid.warmup_fraction * run.steps)))
    train = TrainConfig(
        max_steps=run.steps, global_batch_size=size.global_batch_size,
        micro_batch_size=size.micro_batch_size or size.global_batch_size // world_size,
        lr=run.lr, betas=grid.betas, weight_decay=grid.weight_decay, schedule="cosine",
        warmup_steps=min(warmup, run.steps), alpha_f=grid.alpha_f, grad_clip=grid.grad_clip,
        precision=grid.precision, parallelism=grid.parallelism,
        log_every=grid.log_every or max(1, run.steps // 50), checkpoint_every=grid.checkpoint_every,
        checkpoint_at_end=grid.checkpoint_at_end, progress_bar=False)
    # gpt_config's fields but vocab_size, which the pipeline takes from the tokenizer
    model = dict(n_layer=size.n_layer, n_head=size.n_head, d_model=size.d_model, max_seq_len=grid.seq_len, **grid.arch)
    evals = LMEvalSpec(heldout=dict(data.heldout), sequences=grid.eval_sequences,
                       micro_batch_size=grid.eval_batch_size, name="val")
    return LMPretrainSpec(model=model, train=train, data=data.data, eval=evals, seed=run.seed, doc_mask=False)


def train_entry(config: dict, run_dir: str) -> None:
    """run_training entry point: train one GridRun and write `result.json` (rank 0).

    config: {"run": GridRun fields, "grid": GridConfig.to_dict(), "data": GridData.as_dict()}."""
    grid = GridConfig.from_dict(config["grid"])
    data = GridData.from_dict(config["data"])
    run = GridRun(**{k: v for k, v in config["run"].items() if k in {f.name for f in dataclasses.fields(GridRun)}})
    spec = run_spec(run, grid, data, world_size=get_world_size())
    result = train_lm(spec, run_dir, prefix=DATA_PREFIX)
    if get_rank() != 0:
        return
    history, mixture = result.history, result.mixture
    final = history.eval[-1]
    epochs = max(int(c) / len(s) for c, s in zip(mixture.counts, mixture.streams))
    train_losses = [r["loss"] for r in history.train]
    tail_from = run.steps - max(1, math.ceil(SMOOTH_FRACTION * run.steps))
    tail = [r["loss"] for r in history.train if r["step"] > tail_from] or train_losses[-1:]
    out = run.as_dict() | {
        "val_loss": final["val/loss"],
        **{k.removeprefix("val/"): v for k, v in final.items() if k.startswith("val/") and k != "val/loss"},
        "train_loss_last": train_losses[-1] if train_losses else None,
        "train_loss_smoothed": sum(tail) / len(tail) if tail else None, "epochs": epochs,
        "warmup_steps": spec.train.warmup_steps, "wall_s": result.wall_s, "cpu_s": result.cpu_s,
        "tokens_per_s": run.tokens / max(result.wall_s, 1e-9), "world_size": get_world_size()}
    Path(run_dir, "result.json").write_text(json.dumps(out, indent=1))


# --------------------------------------------------------------------------------------------- the grid
def run_dir_for(run: GridRun, grid: GridConfig, data: GridData, out_dir: str | Path) -> Path:
    """<out_dir>/runs/<name>-<hash of everything the run depends on>: a changed config never reuses a result."""
    key = stable_hash({"run": run.as_dict(), "grid": grid.to_dict(), "data": data.as_dict()}, 8)
    return Path(out_dir) / "runs" / f"{run.name}-{key}"


def run_grid(grid: GridConfig, data: GridData, out_dir: str | Path, *, nproc_per_node: int = 1, nnodes: int = 1,
             rdzv_endpoint: str | None = None, log: Callable[[str], None] | None = print) -> list[dict]:
    """Train every planned, non-skipped run (reusing finished ones) and return their result dicts, in plan
    order."""
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


__all__ = ["ENTRY_POINT", "FIT_LOSSES", "MPT_STYLE", "PARAM_COUNTS", "SMOOTH_FRACTION", "ModelSize", "GridConfig", "EmpiricalSpec", "GridRun",
           "GridData", "gpt_config", "count_params", "plan_grid", "prepare_corpora", "prepare_data_dir",
           "run_spec", "train_entry", "run_dir_for", "run_grid"]
