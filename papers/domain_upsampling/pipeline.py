"""Pretrain on a base mix, then branch with a domain-upsampled mix (Blakeney et al. 2024, arXiv 2406.03476).

A run with upsampling fraction f trains on the base mix for the first (1 - f) T steps and on the
upsampled mix for the last f T. Every such run is identical to the baseline up to its branch step
s = round((1 - f) T), so the baseline is trained once, checkpointed at every branch step, and each
branch resumes from the baseline's checkpoint at s (weights, optimizer, LR schedule, RNG and the
Mixture's position all restored: the same LR schedule continues, only the mixture changes). f = 1
branches at step 0, i.e. trains from the same initialisation with the upsampled mix throughout.
A dataset-removal ablation is a branch whose upsampled mix gives one domain weight 0.

    spec = scales.NOTEBOOKS["01_train"].build("smoke")          # an UpsamplingSpec
    branches = plan_branches(spec.fractions, spec.upsampled_mix, ablate=spec.ablate,
                             ablation_fraction=spec.ablation_fraction)
    runs = run_pipeline(run_config(spec, seed=0), branches, out_dir)   # {"baseline": {...}, "f=0.2": {...}}
    table = collect_results(runs)                               # tidy eval records of every run
    results, runs_by_seed = run_seeds(spec, branches, seeds=[0, 1, 2], out_dir=out_dir)   # every seed
    scores = score_fixture_benchmarks(spec, runs_by_seed, out_dir)     # smoke: the harness code on fixtures

Every run is one shared.pipelines.lm_pretrain run (tokenizer, packed domain streams, Mixture, GPT,
Trainer): `run_config` gives the part common to the baseline and the branches, `run_pipeline` adds
each run's mixture phases, branch checkpoint and branch points, and launches it through
`launch_pretraining` with `train_entry` as the entry point, which adds the paper's benchmarks
(papers.domain_upsampling.evals) as the "bench" eval. Finished runs are skipped; interrupted ones
resume.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from shared.models.gpt import GPT
from shared.pipelines.lm_pretrain import (LMDataSpec, LMPretrainSpec, branch_point_dir, gpt_config,
                                          launch_pretraining, own_train_seconds, prepare_data, train_lm)
from shared.train import TrainConfig, latest_checkpoint, load_model_weights, read_metrics
from shared.utils.config import StrictConfig

from . import evals as E

if TYPE_CHECKING:
    import pandas as pd

ENTRY_POINT = "papers.domain_upsampling.pipeline:train_entry"
BASELINE = "baseline"
BENCH = "bench"
DATA_PREFIX = "upsampling"          # cache-folder prefix of this paper's tokenizers and packed streams
SUITES = ("smoke", "full")
_SUITES: dict[str, Any] = {}        # benchmark suites shared by the in-process runs of a sweep


# ------------------------------------------------------------------------------------------- spec
@dataclass
class UpsamplingSpec(StrictConfig):
    """The 01_train notebook's config: mixes, the sweep, the benchmarks and one pretraining setup.

    seeds: added to the notebook's `seed` parameter (one baseline and one set of branches each).
    data: shared.pipelines.lm_pretrain.LMDataSpec (the domains are its streams; its mix is unused:
        base_mix and upsampled_mix give the phases). eval: the benchmark suite, {"kind": "smoke" |
        "full", **arguments of evals.smoke_suite / evals.full_suite}.
    domain_metrics / general_metric / accuracy_metrics: which "bench/" metrics the figures and
    claims read (domain -> metric). reference: the paper's comparison system, {"name", "path"} of a
    transformers checkpoint (full scale: Llama-2 7B from data_dir), scored once on the same
    benchmarks by `evaluate_reference`; None (smoke, small) skips it. fixture_benchmarks: the harness
    and Gauntlet code on small fixture files, once, on the first seed's baseline
    (`score_fixture_benchmarks`; arguments of evals.fixture_benchmarks); None skips it."""
    base_mix: dict[str, float]
    upsampled_mix: dict[str, float]
    fractions: tuple[float, ...]
    ablate: tuple[str, ...]
    ablation_fraction: float
    domain_metrics: dict[str, str]
    general_metric: str
    accuracy_metrics: dict[str, str]
    model: str | dict[str, Any]
    train: TrainConfig
    data: LMDataSpec
    eval: dict[str, Any]
    seeds: tuple[int, ...] = (0,)
    reference: dict[str, str] | None = None
    fixture_benchmarks: dict[str, Any] | None = None
    needs_data_dir: bool = False

    def __post_init__(self) -> None:
        if self.eval.get("kind") not in SUITES:
            raise ValueError(f"eval kind must be one of {SUITES}, got {self.eval.get('kind')!r}")
        for name, mix in (("base_mix", self.base_mix), ("upsampled_mix", self.upsampled_mix)):
            unknown = sorted(set(mix) - set(self.data.streams))
            if unknown:
                raise ValueError(f"{name} names unknown domains {unknown}; domains: {sorted(self.data.streams)}")
        if self.ablate and not any(abs(f - self.ablation_fraction) < 1e-9 for f in self.fractions):
            raise ValueError(f"ablation_fraction={self.ablation_fraction} must be one of fractions {list(self.fractions)}: "
                             "03_ablation compares each ablation with the branch of its fraction that removes nothing")


def run_config(spec: UpsamplingSpec, seed: int) -> dict:
    """The JSON config shared by a seed's baseline and branches: an LMPretrainSpec dict (without
    the mixture phases, branch checkpoint and branch points run_pipeline adds) plus "base_mix" and
    "bench" (the benchmark suite)."""
    return {"seed": int(seed), "model": spec.to_dict()["model"], "train": spec.train.to_dict(),
            "data": spec.data.to_dict(), "base_mix": dict(spec.base_mix), BENCH: dict(spec.eval)}


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


# ------------------------------------------------------------------------------------ one run
def build_suite(evals: Mapping, tokenizer, max_tokens: int):
    """The eval_fn of a run: evals.smoke_suite or evals.full_suite."""
    spec = dict(evals)
    kind = spec.pop("kind", None)
    if kind == "smoke":
        return E.smoke_suite(tokenizer, max_tokens=max_tokens, **spec)
    if kind == "full":
        return E.full_suite(tokenizer, max_tokens=max_tokens, **spec)
    raise ValueError(f"eval kind must be one of {SUITES}, got {kind!r}")


def train_entry(config: dict, run_dir: str) -> None:
    """Train one run (baseline or branch) into run_dir; the torchrun entry point.

    config: an LMPretrainSpec dict (run_pipeline's) plus "base_mix" (unused here) and "bench"."""
    config = dict(config)
    bench = config.pop(BENCH)
    config.pop("base_mix", None)
    spec = LMPretrainSpec.from_dict(config)

    def benchmarks(tokenizer, spec: LMPretrainSpec) -> dict:
        max_tokens = gpt_config(spec.model, len(tokenizer)).max_seq_len      # the model's context length
        key = json.dumps([bench, spec.data.tokenizer.to_dict(), {n: s.to_dict() for n, s in spec.data.streams.items()},
                          max_tokens], sort_keys=True, default=str)
        if key not in _SUITES:
            _SUITES[key] = build_suite(bench, tokenizer, max_tokens=max_tokens)
        return {BENCH: _SUITES[key]}

    train_lm(spec, run_dir, extra_evals=benchmarks, prefix=DATA_PREFIX)


# ------------------------------------------------------------------------------------ pipeline
def run_pipeline(config: dict, branches: Sequence[Branch], out_dir: str | Path, *, nproc_per_node: int = 1,
                 nnodes: int = 1, rdzv_endpoint: str | None = None) -> dict[str, dict]:
    """Train the baseline (checkpointed at every branch step), then every branch from its checkpoint.

    config: `run_config(spec, seed)`. Multi-node (nnodes > 1): run the same call on every node, with
    rdzv_endpoint "host:port" (or MASTER_ADDR / MASTER_PORT set); each run is one torchrun launch on
    every node.

    Returns {run name: {"dir", "fraction", "removed", "start_step", "steps", "wall_s", "train_s"}}:
    wall_s is the time this call spent on the run (about 0 for a run that had already finished),
    train_s the run's own optimizer-step time (own_train_seconds). A summary goes to out_dir/runs.json."""
    out_dir = Path(out_dir)
    for attr in ("name", "slug"):
        values = [getattr(b, attr) for b in branches]
        if len(set(values)) != len(values) or BASELINE in values:
            raise ValueError(f"branch {attr}s must be distinct and not {BASELINE!r}: {values}")
    T = int(config["train"]["max_steps"])
    base = dict(config["base_mix"])
    starts = sorted({b.start_step(T) for b in branches} - {0})
    launch = dict(entry_point=ENTRY_POINT, nproc_per_node=nproc_per_node, nnodes=nnodes, rdzv_endpoint=rdzv_endpoint)
    runs: dict[str, dict] = {}

    def train(name: str, phases: list, branch_from: str | None, branch_points: list[int], run_dir: Path,
              fraction: float, removed: str | None, start: int) -> None:
        t0 = time.perf_counter()
        run_cfg = {**config, "data": {**config["data"], "phases": phases}, "branch_from": branch_from,
                   "branch_points": branch_points}
        launch_pretraining(run_cfg, run_dir, **launch)
        runs[name] = {"dir": str(run_dir), "fraction": fraction, "removed": removed, "start_step": start,
                      "steps": T - start, "wall_s": round(time.perf_counter() - t0, 3),
                      "train_s": round(own_train_seconds(run_dir, branch_from), 3)}

    base_dir = out_dir / BASELINE
    train(BASELINE, [[0.0, base]], None, starts, base_dir, 0.0, None, 0)
    for b in branches:
        s = b.start_step(T)
        branch_from = str(branch_point_dir(base_dir, s)) if s else None
        train(b.name, b.phases(base, T), branch_from, [], out_dir / "branches" / b.slug, b.fraction, b.removed, s)
    (out_dir / "runs.json").write_text(json.dumps(runs, indent=1))
    return runs


def run_seeds(spec: UpsamplingSpec, branches: Sequence[Branch], seeds: Sequence[int], out_dir: str | Path, *,
              data_dir: str | Path | None = None, nproc_per_node: int = 1, nnodes: int = 1,
              rdzv_endpoint: str | None = None, log=print) -> tuple[pd.DataFrame, dict[int, dict]]:
    """run_pipeline for every seed (into out_dir/seed<s>), with "{data_dir}" filled in; returns the
    tidy results of every run of every seed (collect_results, with a "seed" column) and
    {seed: run_pipeline's summary}."""
    import pandas as pd   # third-party, heavy: only where results become tables (presets load without it)
    frames, runs_by_seed = [], {}
    for s in seeds:
        runs = run_pipeline(resolve_data_dir(run_config(spec, s), data_dir), branches, Path(out_dir) / f"seed{s}",
                            nproc_per_node=nproc_per_node, nnodes=nnodes, rdzv_endpoint=rdzv_endpoint)
        runs_by_seed[int(s)] = runs
        frames.append(collect_results(runs).assign(seed=s))
        if log is not None:
            log(f"seed {s}: " + ", ".join(f"{k} {v['wall_s']:.0f}s" for k, v in runs.items()))
    return pd.concat(frames, ignore_index=True), runs_by_seed


def evaluate_reference(spec: UpsamplingSpec, out_dir: str | Path, *, data_dir: str | Path | None = None,
                       device: str | None = None) -> dict | None:
    """The paper's comparison system (spec.reference) on the runs' benchmark suite, once: written to
    out_dir/reference.json and read back by a rerun. None when the spec names no reference.

    Returns {"name", "path", <metric>: value} with the metrics of evals.full_suite."""
    if not spec.reference:
        return None
    out = Path(out_dir) / "reference.json"
    if out.exists():
        return json.loads(out.read_text())
    ref = resolve_data_dir(dict(spec.reference), data_dir)
    scores = E.reference_scores(ref["path"], resolve_data_dir(dict(spec.eval), data_dir), device=device)
    record = {"name": ref["name"], "path": str(ref["path"]), **{k: float(v) for k, v in scores.items()}}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1))
    return record


def load_trained(spec: UpsamplingSpec, run_dir: str | Path) -> tuple[GPT, Any]:
    """(the model of a finished run at its latest checkpoint, in eval mode on the CPU; the runs' tokenizer)."""
    tokenizer = prepare_data(spec.data, prefix=DATA_PREFIX).tokenizer     # the runs' own (memoised / cached)
    model = GPT(gpt_config(spec.to_dict()["model"], len(tokenizer)))
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        raise FileNotFoundError(f"{run_dir} holds no checkpoint")
    load_model_weights(checkpoint, model)
    return model.eval(), tokenizer


def score_fixture_benchmarks(spec: UpsamplingSpec, runs_by_seed: Mapping[int, Mapping[str, Mapping]],
                             out_dir: str | Path) -> dict[str, float] | None:
    """spec.fixture_benchmarks on the first seed's final baseline: evals.fixture_benchmarks with the fixture
    files under out_dir/benchmark_fixtures; also written to out_dir/fixture_benchmarks.json. None when the
    spec asks for none. Runs after every training run, so it changes nothing that training computes."""
    if not spec.fixture_benchmarks:
        return None
    first = runs_by_seed[min(runs_by_seed)]
    model, tokenizer = load_trained(spec, first[BASELINE]["dir"])
    scores = E.fixture_benchmarks(model, tokenizer, Path(out_dir) / "benchmark_fixtures", **spec.fixture_benchmarks)
    record = {k: round(float(v), 6) for k, v in scores.items()}
    (Path(out_dir) / "fixture_benchmarks.json").write_text(json.dumps(record, indent=1))
    return record


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
    import pandas as pd   # third-party, heavy: only where results become tables (presets load without it)
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
