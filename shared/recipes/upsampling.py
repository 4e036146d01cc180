"""Pretrain on a base mix, then branch with a domain-upsampled mix (Blakeney et al. 2024, arXiv 2406.03476).

A run with upsampling fraction f trains on the base mix for the first (1 - f) T steps and on the
upsampled mix for the last f T. Every such run is identical to the baseline up to its branch step
s = round((1 - f) T), so the baseline is trained once, checkpointed at every branch step, and each
branch resumes from the baseline's checkpoint at s (weights, optimizer, LR schedule, RNG and the
Mixture's position all restored: the same LR schedule continues, only the mixture changes). f = 1
branches at step 0, i.e. trains from the same initialisation with the upsampled mix throughout.
A dataset-removal ablation is a branch whose upsampled mix gives one domain weight 0.

    branches = plan_branches(fractions=(0.05, 0.1, 0.2, 0.3, 1.0), upsampled=UP,
                             ablate=("math", "code"), ablation_fraction=0.2)
    runs = run_pipeline(config, branches, out_dir)        # {"baseline": dir, "f=0.2": dir, ...}
    table = collect_results(runs)                           # tidy eval records of every run

`config` is a JSON-able dict (it travels to torchrun workers):

    {"seed": 0,
     "model": {GPTConfig fields except vocab_size},
     "train": {TrainConfig fields except run_dir / resume / seed; max_steps = T},
     "data": {"seq_len": 128,
              "tokenizer": {"vocab_size": 2048} (BPE on the domains' documents) | {"path": folder},
              "domains": {"general": {"corpora": [{"name": "wordnet", "max_docs": 1500}, ...]}
                                     | {"path": data_dir/general}, ...}},
     "base_mix": {"general": 0.7, "math": 0.1, ...},
     "evals": {"kind": "smoke", ...smoke_suite kwargs} | {"kind": "full", "files": {...}, ...}}

`train_entry(config, run_dir)` is the torchrun entry point of one run (the pipeline adds "phases",
"resume_from" and "checkpoint_steps"); `run_pipeline` launches the baseline and the branches through
shared.train.run_training, skipping runs that already finished and resuming interrupted ones.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

ENTRY_POINT = "shared.recipes.upsampling:train_entry"
_MEMO: dict[str, object] = {}      # tokenizer, streams and benchmark suite, shared by the runs of one process
BASELINE = "baseline"
BRANCH_POINTS = "branch_points"


# ------------------------------------------------------------------------------------ branch plan
@dataclass(frozen=True)
class Branch:
    """One run that leaves the baseline: the last `fraction` of training on `upsampled`."""
    name: str
    fraction: float
    upsampled: Mapping[str, float]
    removed: str | None = None          # the domain a dataset-removal ablation drops

    def start_step(self, total_steps: int) -> int:
        """The baseline step it resumes from, round((1 - f) T)."""
        return int(round((1.0 - self.fraction) * total_steps))

    def phases(self, base: Mapping[str, float], total_steps: int) -> list[list]:
        """Mixture phases [[progress, weights], ...]: base, then upsampled from the branch step."""
        s = self.start_step(total_steps)
        if s == 0:
            return [[0.0, dict(self.upsampled)]]
        return [[0.0, dict(base)], [s / total_steps, dict(self.upsampled)]]

    @property
    def slug(self) -> str:
        """A folder name: f0.2, f0.2-no_math."""
        return f"f{self.fraction:g}" + (f"-no_{self.removed}" if self.removed else "")


def plan_branches(fractions: Sequence[float], upsampled: Mapping[str, float], ablate: Sequence[str] = (),
                  ablation_fraction: float = 0.2) -> list[Branch]:
    """The sweep (one branch per fraction in (0, 1]) and, at `ablation_fraction`, one branch per
    domain in `ablate` with that domain's weight set to 0 in the upsampled mix."""
    for f in list(fractions) + [ablation_fraction]:
        if not 0.0 < f <= 1.0:
            raise ValueError(f"upsampling fractions must be in (0, 1], got {f} (f = 0 is the baseline)")
    unknown = set(ablate) - set(upsampled)
    if unknown:
        raise ValueError(f"cannot ablate {sorted(unknown)}: not in the upsampled mix {sorted(upsampled)}")
    branches = [Branch(f"f={f:g}", float(f), dict(upsampled)) for f in fractions]
    for domain in ablate:
        mix = {k: (0.0 if k == domain else v) for k, v in upsampled.items()}
        if sum(mix.values()) <= 0:
            raise ValueError(f"removing {domain!r} leaves an empty upsampled mix")
        name = f"f={ablation_fraction:g} -{domain}"
        branches.append(Branch(name, float(ablation_fraction), mix, removed=domain))
    names = [b.name for b in branches]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate branches {names}")
    return branches


# ------------------------------------------------------------------------------- data and model
def build_tokenizer(data: Mapping):
    """data["tokenizer"]: {"path": folder} (a saved tokenizer, e.g. full scale's) or
    {"vocab_size": n} (a byte-level BPE trained on the domains' training documents, cached; rank 0
    trains it, the others wait)."""
    from shared.data.cache import atomic_dir, cache_root, stable_hash
    from shared.data.tokenizer import load_tokenizer, train_bpe
    from shared.train.distributed import barrier, get_rank

    spec = data["tokenizer"]
    if "path" in spec:
        return load_tokenizer(spec["path"])
    if "vocab_size" not in spec:
        raise ValueError(f"tokenizer spec needs 'path' or 'vocab_size', got {sorted(spec)}")
    domains = {d: s for d, s in data["domains"].items()}
    if any("corpora" not in s for s in domains.values()):
        raise ValueError("a tokenizer trained on the domains needs every domain given as 'corpora'; for "
                         "data_dir domains give the tokenizer as {'path': folder}")
    folder = cache_root() / "tokenizers" / f"upsampling-{stable_hash({'spec': spec, 'domains': domains})}"
    if get_rank() == 0 and not (folder / "tokenizer.json").exists():
        docs = [doc for s in domains.values() for doc in _domain_docs(s)]
        tok = train_bpe(docs, int(spec["vocab_size"]), show_progress=False)
        with atomic_dir(folder) as tmp:
            tok.save_pretrained(str(tmp))
    barrier()
    return load_tokenizer(folder)


def _domain_docs(spec: Mapping) -> list[str]:
    from shared.data.corpora import load_corpus

    docs: list[str] = []
    for c in spec["corpora"]:
        c = dict(c)                                   # the rest are generator arguments (n_train, ...)
        name, max_docs, seed = c.pop("name"), c.pop("max_docs", None), c.pop("seed", 0)
        docs += load_corpus(name, "train", max_docs=max_docs, seed=seed, **c)
    return docs


def build_streams(data: Mapping, tokenizer) -> dict:
    """{domain: PackedDataset}. Each domain is {"corpora": [{"name", "max_docs", ...}]} (shared.data
    corpora, train split, packed together into a cached folder) or {"path": folder of jsonl /
    parquet / text} (full scale, shared.data.packing.tokenize_data_dir). Rank 0 builds, others wait."""
    from shared.data.cache import cache_root, stable_hash
    from shared.data.packing import INDEX, PackedDataset, pack_documents, tokenize_data_dir, tokenizer_fingerprint
    from shared.train.distributed import barrier, get_rank

    seq_len = int(data["seq_len"])
    folders = {}
    for domain, spec in data["domains"].items():
        key = stable_hash({"spec": spec, "seq_len": seq_len, "tok": tokenizer_fingerprint(tokenizer)})
        folder = Path(spec.get("packed_dir") or cache_root() / "packed" / f"upsampling-{domain}-{key}")
        folders[domain] = folder
        if get_rank() != 0 or (folder / INDEX).exists():
            continue
        if "path" in spec:
            tokenize_data_dir(spec["path"], tokenizer, seq_len, folder, text_field=spec.get("text_field", "text"))
        elif "corpora" in spec:
            docs = _domain_docs(spec)
            pack_documents(docs, tokenizer, seq_len, folder, total=len(docs), desc=f"pack {domain}",
                           source={"domain": domain, "spec": spec})
        else:
            raise ValueError(f"domain {domain!r} needs 'corpora' or 'path', got {sorted(spec)}")
    barrier()
    return {d: PackedDataset(f) for d, f in folders.items()}


def build_suite(evals: Mapping, tokenizer, max_tokens: int):
    """The eval_fn of a run: shared.recipes.upsampling_evals' smoke or full suite."""
    from shared.recipes import upsampling_evals as E

    spec = dict(evals)
    kind = spec.pop("kind", None)
    if kind == "smoke":
        return E.smoke_suite(tokenizer, max_tokens=max_tokens, **spec)
    if kind == "full":
        return E.full_suite(tokenizer, max_tokens=max_tokens, **spec)
    raise ValueError(f"evals kind must be 'smoke' or 'full', got {kind!r}")


# ------------------------------------------------------------------------------------ one run
def _memo(kind: str, key, build):
    """build() once per process for equal keys: the in-process runs of a sweep (world size 1) share
    their tokenizer, packed streams and benchmark suite instead of rebuilding them for every run."""
    k = kind + json.dumps(key, sort_keys=True, default=str)
    if k not in _MEMO:
        _MEMO[k] = build()
    return _MEMO[k]


def train_entry(config: dict, run_dir: str) -> None:
    """Train one run (baseline or branch) into run_dir; the torchrun entry point.

    config adds to the pipeline config: "phases" (the Mixture's [[progress, weights], ...]),
    "resume_from" (a baseline checkpoint, or None) and "checkpoint_steps" (steps to checkpoint
    and evaluate at, for branches to start from)."""
    import torch

    from shared.data.mixture import Mixture, PiecewiseSchedule
    from shared.models.gpt import GPT, GPTConfig
    from shared.train import TrainConfig, Trainer, latest_checkpoint, seed_everything
    from shared.train.distributed import default_device, get_rank, get_world_size
    from shared.train.lm import lm_loss

    seed = int(config["seed"])
    data = config["data"]
    tokenizer = _memo("tokenizer", [data["tokenizer"], data["domains"]], lambda: build_tokenizer(data))
    streams = _memo("streams", data, lambda: build_streams(data, tokenizer))
    seed_everything(seed)                        # the initial weights depend on the seed only
    # built on the training device: a 7B model is not materialised in host memory once per rank
    with torch.device(default_device(config["train"].get("device"))):
        model = GPT(GPTConfig(vocab_size=len(tokenizer), **config["model"]))
    train = dict(config["train"])
    T = int(train["max_steps"])
    schedule = PiecewiseSchedule([(float(p), dict(w)) for p, w in config["phases"]])
    mixture = Mixture(streams, schedule, global_batch_size=int(train["global_batch_size"]), total_steps=T,
                      seed=seed, rank=get_rank(), world_size=get_world_size(),
                      micro_batch_size=train.get("micro_batch_size"))
    resume = "latest"
    if latest_checkpoint(run_dir) is None and config.get("resume_from"):
        resume = str(config["resume_from"])
    cfg = TrainConfig(**train, run_dir=run_dir, resume=resume, seed=seed)
    max_tokens = int(config["model"]["max_seq_len"])
    suite = _memo("suite", [config["evals"], data["tokenizer"], data["domains"], max_tokens],
                  lambda: build_suite(config["evals"], tokenizer, max_tokens=max_tokens))
    trainer = Trainer(model, lm_loss, mixture, cfg, eval_fns={"bench": suite})
    for step in sorted(int(s) for s in config.get("checkpoint_steps", ())):
        if not 0 < step < T:
            continue
        trainer.fit(until_step=step)                  # checkpoints at `step`, as a preempted run would
        keep_branch_point(run_dir, step)
        evaluated = any(r.get("kind") == "eval" and r.get("step") == step for r in trainer.history.records)
        if trainer.step == step and not evaluated:
            trainer.evaluate()                        # the metrics every branch starts from
    trainer.fit()


def branch_point_dir(run_dir: str | Path, step: int) -> Path:
    """Where the baseline keeps its checkpoint of `step` for branches (outside checkpoints/, so
    the trainer's keep_last_n pruning never removes it)."""
    return Path(run_dir) / BRANCH_POINTS / f"step_{step:08d}"


def keep_branch_point(run_dir: str | Path, step: int) -> Path:
    """Hard-link (or copy) the checkpoint of `step` to branch_point_dir; collective (rank 0 works,
    every rank waits). Idempotent; published by a rename, so a partial copy is never used."""
    from shared.train.checkpoint import MANIFEST, checkpoint_root
    from shared.train.distributed import barrier, get_rank

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


# ------------------------------------------------------------------------------------ pipeline
def _finished(run_dir: Path, total_steps: int) -> bool:
    from shared.train import latest_checkpoint

    ckpt = latest_checkpoint(run_dir)
    return ckpt is not None and int(ckpt.name.split("_")[1]) >= total_steps


def own_train_seconds(run_dir: str | Path, resume_from: str | None) -> float:
    """Seconds a run spent in its own optimizer steps (the trainer's elapsed_s, which leaves out
    evaluation, checkpoints and setup), less what the checkpoint it resumed from had already spent."""
    import torch

    from shared.train import read_metrics

    train = [r for r in read_metrics(run_dir) if r.get("kind") == "train"] if Path(run_dir).exists() else []
    end = float(train[-1]["elapsed_s"]) if train else 0.0
    start = 0.0
    if resume_from:
        state = torch.load(Path(resume_from) / "trainer_state.pt", map_location="cpu", weights_only=True)
        start = float(state["trainer"]["elapsed_s"])
    return end - start


def _stamp_config(run_dir: Path, run_cfg: dict) -> None:
    """Record the config a run dir was trained with; refuse to reuse the dir under another config
    (its checkpoints and metrics would silently stand for the new one)."""
    stamp = run_dir / "pipeline_config.json"
    text = json.dumps(run_cfg, sort_keys=True, indent=1, default=str)
    if stamp.exists() and stamp.read_text() != text:
        raise ValueError(f"{run_dir} was trained with another config ({stamp}); remove that folder to "
                         "retrain, or give the pipeline another out_dir")
    run_dir.mkdir(parents=True, exist_ok=True)
    stamp.write_text(text)


def run_pipeline(config: dict, branches: Sequence[Branch], out_dir: str | Path, *, nproc_per_node: int = 1,
                 nnodes: int = 1, rdzv_endpoint: str | None = None) -> dict[str, dict]:
    """Train the baseline (checkpointed at every branch step), then every branch from its checkpoint.

    Multi-node (nnodes > 1): run the same call on every node, with rdzv_endpoint "host:port" (or
    MASTER_ADDR / MASTER_PORT set); each run is one torchrun launch on every node.

    Returns {run name: {"dir", "fraction", "removed", "start_step", "steps", "wall_s", "train_s"}}:
    wall_s is the time this call spent on the run (about 0 for a run that had already finished),
    train_s the run's own optimizer-step time (own_train_seconds). A summary goes to out_dir/runs.json."""
    from shared.train import run_training

    out_dir = Path(out_dir)
    for attr in ("name", "slug"):
        values = [getattr(b, attr) for b in branches]
        if len(set(values)) != len(values) or BASELINE in values:
            raise ValueError(f"branch {attr}s must be distinct and not {BASELINE!r}: {values}")
    T = int(config["train"]["max_steps"])
    base = dict(config["base_mix"])
    starts = sorted({b.start_step(T) for b in branches} - {0})
    if nnodes > 1 and rdzv_endpoint is None and os.environ.get("MASTER_ADDR"):
        rdzv_endpoint = f"{os.environ['MASTER_ADDR']}:{os.environ.get('MASTER_PORT', '29500')}"
    launch = dict(nproc_per_node=nproc_per_node, nnodes=nnodes, rdzv_endpoint=rdzv_endpoint)
    runs: dict[str, dict] = {}

    def train(name: str, run_cfg: dict, run_dir: Path, fraction: float, removed, start: int) -> None:
        t0 = time.perf_counter()
        _stamp_config(run_dir, run_cfg)
        if not _finished(run_dir, T):
            run_training(ENTRY_POINT, run_cfg, run_dir=run_dir, **launch)
        runs[name] = {"dir": str(run_dir), "fraction": fraction, "removed": removed, "start_step": start,
                      "steps": T - start, "wall_s": round(time.perf_counter() - t0, 3),
                      "train_s": round(own_train_seconds(run_dir, run_cfg["resume_from"]), 3)}

    base_dir = out_dir / BASELINE
    train(BASELINE, {**config, "phases": [[0.0, base]], "resume_from": None, "checkpoint_steps": starts},
          base_dir, 0.0, None, 0)
    for b in branches:
        s = b.start_step(T)
        resume_from = str(branch_point_dir(base_dir, s)) if s else None
        train(b.name, {**config, "phases": b.phases(base, T), "resume_from": resume_from, "checkpoint_steps": []},
              out_dir / "branches" / b.slug, b.fraction, b.removed, s)
    (out_dir / "runs.json").write_text(json.dumps(runs, indent=1))
    return runs


def resolve_data_dir(config, data_dir: str | Path | None):
    """A copy of a nested config with "{data_dir}" in every string replaced by `data_dir`
    (full-scale presets name their files relative to it); ValueError if one is needed but None."""
    if isinstance(config, dict):
        return {k: resolve_data_dir(v, data_dir) for k, v in config.items()}
    if isinstance(config, (list, tuple)):
        return type(config)(resolve_data_dir(v, data_dir) for v in config)
    if isinstance(config, str) and "{data_dir}" in config:
        if data_dir is None:
            raise ValueError(f"{config!r} needs data_dir (pass -p data_dir /path/to/prepared/data)")
        return config.replace("{data_dir}", str(data_dir))
    return config


def collect_results(runs: Mapping[str, Mapping], prefix: str = "bench/"):
    """A tidy DataFrame of every run's eval records: run, fraction, removed, start_step, step,
    metric, value. A branch's records begin after its start step; the baseline's eval at that
    step is where its curve leaves the baseline."""
    import pandas as pd

    from shared.train import read_metrics

    rows = []
    for name, info in runs.items():
        for rec in read_metrics(info["dir"]):
            if rec.get("kind") != "eval":
                continue
            for k, v in rec.items():
                if k.startswith(prefix):
                    rows.append({"run": name, "fraction": info["fraction"], "removed": info["removed"],
                                 "start_step": info["start_step"], "step": rec["step"],
                                 "metric": k[len(prefix):], "value": float(v)})
    df = pd.DataFrame(rows)            # a run evaluated twice at a step (a resumed run): keep the last
    return df.drop_duplicates(["run", "step", "metric"], keep="last").reset_index(drop=True) if rows else df
