"""03_data_scarcity's training runs as jobs of `shared.train.jobs`: one job per data-set size, `slots` at a
time on each of `nnodes` nodes (one GPU each; on a CPU one process each; one slot on one node: here, one
after another), each resumable.

    jobs = scarcity_jobs(sizes, components_dir, tel_spec, pool_size, train_compositions, held_out_compositions,
                         seed, run.out_dir / "jobs")
    trained = train_scarcity_jobs(jobs, slots=slots, nnodes=nnodes, launcher=launcher)   # {n: (seen, held out)}

Each job (entry point `scarcity_job`) rebuilds its data from seeds (the first n scenes of one pool of
02_telephoning's training compositions, the seen and held-out prompts), trains one scene text-to-image model
with `<job>/train` as its trainer run_dir (metrics.jsonl; a checkpoint, EMA weights included, every
`train.checkpoint_every` steps, so a killed job resumes from its latest one), saves the EMA weights to
`<job>/model.safetensors`, and writes its scores (seen and held-out prompts) to `<job>/result.json`; then
its checkpoints are removed. The config holds a hash of 01_components' saved networks, so a finished job is
skipped on a rerun only while the networks it was scored with are the same.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from papers.commoncanvas.scales import T2IEvalSpec, T2ITrainSpec
from papers.commoncanvas.scene_experiments import evaluate_saved_t2i, train_and_evaluate_t2i
from papers.commoncanvas.scene_t2i import load_components
from papers.commoncanvas.scenes import generate_compositions
from shared.train.checkpoint import latest_checkpoint
from shared.train.jobs import Job, resume_or_reset, run_jobs
from shared.utils.io import write_json_atomic

JOB_ENTRY_POINT = "papers.commoncanvas.scene_jobs:scarcity_job"
RESULT_FILE, MODEL_FILE, TRAIN_DIR = "result.json", "model.safetensors", "train"
POOL_SEED, SEEN_SEED, HELD_OUT_SEED = 2_000, 4_000, 6_000      # + the notebook's seed


def components_sha1(folder: str | Path) -> str:
    """A hash of every file in 01_components' saved folder (names and bytes)."""
    digest = hashlib.sha1()
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode())
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def scarcity_job_config(n: int, components_dir: str | Path, tel_spec: Mapping[str, Any], pool_size: int,
                        train_compositions: np.ndarray, held_out_compositions: np.ndarray, seed: int
                        ) -> dict[str, Any]:
    """One size's job config (JSON only): the first ``n`` of ``pool_size`` scenes of the training compositions
    (C, 4) to train on, the held-out compositions (C', 4) to score on, and 02_telephoning's model, training
    and evaluation specs (``tel_spec``: its metrics.json "spec")."""
    return {"n": n, "components_dir": str(components_dir), "components_sha1": components_sha1(components_dir),
            "pool_size": pool_size, "train_compositions": np.asarray(train_compositions).tolist(),
            "held_out_compositions": np.asarray(held_out_compositions).tolist(),
            "pool_seed": POOL_SEED + seed, "seen_seed": SEEN_SEED + seed, "held_out_seed": HELD_OUT_SEED + seed,
            "prompts": tel_spec["eval"]["prompts"], "model": tel_spec["model"], "train": tel_spec["train"],
            "eval": tel_spec["eval"], "seed": seed}


def scarcity_job(config: dict[str, Any], run_dir: str) -> None:
    """Job entry point (shared.train.jobs): train on the first n pool scenes (resuming from the latest
    checkpoint in run_dir/train), score on the seen and held-out prompts; writes run_dir/result.json
    {"n", "seen": {fid, consistency_*, train_s, final_loss}, "held_out": {fid, consistency_*}}. Trains on
    the job's GPU (CUDA_VISIBLE_DEVICES of its slot), else on the CPU."""
    torch.set_num_threads(1)                   # as every size always trained: one thread per run
    device = "cuda" if torch.cuda.is_available() else "cpu"
    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    resume_or_reset(folder, config, clear=[TRAIN_DIR])      # another config's training is removed
    latest = latest_checkpoint(folder / TRAIN_DIR)
    if latest is not None:
        print(f"resuming from {latest}", flush=True)
    comps = load_components(config["components_dir"])
    scene = comps.scene
    train_compositions = np.asarray(config["train_compositions"], dtype=np.int64)
    held_out_compositions = np.asarray(config["held_out_compositions"], dtype=np.int64)
    pool = generate_compositions(config["pool_size"], scene, train_compositions, seed=config["pool_seed"])
    pool = pool.subset(range(config["n"]))                                # nested: the first n of one pool
    seen = generate_compositions(config["prompts"], scene, train_compositions, seed=config["seen_seed"])
    held = generate_compositions(config["prompts"], scene, held_out_compositions, seed=config["held_out_seed"])
    train, evaluation = T2ITrainSpec.from_dict(config["train"]), T2IEvalSpec.from_dict(config["eval"])
    result, _, _ = train_and_evaluate_t2i(comps, config["model"], train, evaluation, pool, seen, config["seed"],
                                          device, run_dir=folder / TRAIN_DIR,
                                          model_path=folder / MODEL_FILE, resume=True)
    held_out = evaluate_saved_t2i(folder / MODEL_FILE, comps, evaluation, held, config["seed"], device)
    write_json_atomic(folder / RESULT_FILE, {"n": config["n"], "seen": result, "held_out": held_out})
    shutil.rmtree(folder / TRAIN_DIR / "checkpoints", ignore_errors=True)   # done: nothing left to resume


def scarcity_jobs(sizes: Sequence[int], components_dir: str | Path, tel_spec: Mapping[str, Any], pool_size: int,
                  train_compositions: np.ndarray, held_out_compositions: np.ndarray, seed: int,
                  jobs_dir: str | Path) -> list[Job]:
    """One job per size, in the order of ``sizes``; size n's in jobs_dir/n<n>."""
    return [Job(f"n{n}", JOB_ENTRY_POINT,
                scarcity_job_config(n, components_dir, tel_spec, pool_size, train_compositions,
                                    held_out_compositions, seed),
                Path(jobs_dir) / f"n{n}") for n in sizes]


def model_path(job: Job) -> Path:
    """Where a job saved its model's EMA weights."""
    return job.run_dir / MODEL_FILE


def train_scarcity_jobs(jobs: Sequence[Job], slots: int = 1, nnodes: int = 1, launcher: str | None = None,
                        in_process: bool | None = None) -> dict[int, tuple[dict[str, float], dict[str, float]]]:
    """Run the jobs (shared.train.jobs.run_jobs: `slots` at a time on each of `nnodes` nodes, started as
    `launcher` says) and collect their results in job order: {n: (scores on seen prompts with train_s and
    final_loss, scores on held-out-composition prompts)}."""
    run_jobs(jobs, slots=slots, nnodes=nnodes, launcher=launcher, in_process=in_process)
    return job_results(jobs)


def job_results(jobs: Sequence[Job]) -> dict[int, tuple[dict[str, float], dict[str, float]]]:
    """The finished jobs' result files, in job order: {n: (scores on seen prompts, on held-out prompts)}."""
    trained = {}
    for job in jobs:
        result = json.loads((job.run_dir / RESULT_FILE).read_text())
        trained[result["n"]] = (result["seen"], result["held_out"])
    return trained
