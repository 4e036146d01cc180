"""The IMP sweep as jobs of `shared.train.jobs`: one job per (architecture, dimension, seed), `slots` at a
time on each of `nnodes` nodes (one GPU each; one slot on one node: here, one after another), each resumable.

    curves = imp_curves_as_jobs(spec, "manifolds", seed, data_dir, run.out_dir / "jobs",
                                slots=nproc_per_node, nnodes=nnodes, launcher=launcher)

Each job rebuilds its own data (the one dimension it trains: manifold_dataset, or pca_dataset of the
images from data_dir, the same tensors the in-process imp_curves trains on) and runs the IMP of
`imp.lottery_imp` with its files in the job's folder:

- every level trains with the job's folder as its trainer run_dir (metrics.jsonl; with the spec's
  `checkpoint_every`, a checkpoint every that many steps, the latest kept), so a killed level resumes from
  its latest checkpoint; the rewind snapshot travels in those checkpoints (`SnapshotCheckpoint`), so a
  dense level resumed past the rewind step still rewinds to the weights of that step;
- after every finished level its checkpoints are removed and the run's progress (masks, weights, rewind
  snapshot, levels so far: shared.train.pruning.ImpProgress) is saved to `imp_progress.pt`; a restarted
  job goes on from the next level. levels/level<l>.jsonl keeps each level's metrics.jsonl;
- at the end the rows of the curves table go to `imp_rows.json` and the progress file is removed.

Deleting a level's checkpoints before saving its progress keeps the folder unambiguous: checkpoints there
always belong to the level after the saved progress.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from shared.pipelines.vision_classification import (ClassifierTrainSpec, ImageDataSpec, build_classifier,
                                                    limit_threads, load_image_data)
from shared.train.jobs import Job, resume_or_reset, run_jobs
from shared.train.pruning import IMPResult, ImpProgress, SnapshotAtStep
from shared.utils.io import write_json_atomic

from .imp import (ImpSweepSpec, ManifoldDataSpec, SweepImpSpec, arch_imp_spec, curve_rows, lottery_imp,
                  manifold_dataset, pca_dataset, run_seed)

JOB_ENTRY_POINT = "papers.prunability.imp_jobs:imp_run_job"
JOB_ROWS, PROGRESS = "imp_rows.json", "imp_progress.pt"
KINDS = ("manifolds", "images")


class SnapshotCheckpoint:
    """SnapshotAtStep as a checkpointed trainer callback: its snapshot (weights and batch-stream position,
    None before the rewind step) is saved in every trainer checkpoint and restored on resume."""

    def __init__(self, snapshot: SnapshotAtStep):
        self.snapshot = snapshot

    def on_step_end(self, trainer, record) -> None:
        self.snapshot.on_step_end(trainer, record)

    def state_dict(self) -> dict:
        return {"state": self.snapshot.state, "data_state": self.snapshot.data_state}

    def load_state_dict(self, state: dict) -> None:
        self.snapshot.state, self.snapshot.data_state = state["state"], state["data_state"]


def checkpointed(callbacks: list) -> list:
    """run_imp's callbacks of a level with its SnapshotAtStep checkpointed (SnapshotCheckpoint)."""
    return [SnapshotCheckpoint(cb) if isinstance(cb, SnapshotAtStep) else cb for cb in callbacks]


def imp_job_config(spec: ImpSweepSpec, kind: str, arch: str, dim: int, seed_index: int, seed: int,
                   data_dir: str | Path | None) -> dict[str, Any]:
    """One IMP run's job config: what it needs to rebuild its data (kind, data spec, its dimension, data_dir
    for images) and to train (the architecture's model spec, the train spec, the IMP spec with the dense_head
    rule resolved for this architecture), its place in the sweep and its run seed."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    a = list(spec.archs).index(arch)
    imp = dataclasses.replace(arch_imp_spec(spec.imp, arch), dense_head=())
    return {"kind": kind, "data": spec.data.to_dict(), "dim": dim,
            "data_dir": None if kind == "manifolds" or data_dir is None else str(data_dir),
            "arch": arch, "arch_index": a, "model": spec.archs[arch], "train": spec.train.to_dict(),
            "imp": imp.to_dict(), "tolerance": spec.tolerance, "seed": seed, "seed_index": seed_index,
            "run_seed": run_seed(seed, a, seed_index), "checkpoint_every": spec.checkpoint_every,
            "threads": spec.threads}


def _job_data(config: dict[str, Any]):
    if config["kind"] == "manifolds":
        return manifold_dataset(ManifoldDataSpec.from_dict(config["data"]), config["dim"])
    train_full, test_full = load_image_data(ImageDataSpec.from_dict(config["data"]), config["data_dir"])
    return pca_dataset(train_full, test_full, config["dim"])


def _save_progress(run_dir: Path, progress: ImpProgress) -> None:
    tmp = run_dir / f".{PROGRESS}.tmp"
    torch.save({"level": progress.level, "masks": progress.masks, "weights": progress.weights,
                "rewind_state": progress.rewind_state, "rewind_data_state": progress.rewind_data_state,
                "sparsity": progress.result.sparsity, "metrics": progress.result.metrics}, tmp)
    os.replace(tmp, run_dir / PROGRESS)


def _load_progress(run_dir: Path) -> ImpProgress | None:
    path = run_dir / PROGRESS
    if not path.exists():
        return None
    saved = torch.load(path, map_location="cpu", weights_only=True)
    return ImpProgress(saved["level"], saved["masks"], saved["weights"], saved["rewind_state"],
                       saved["rewind_data_state"], IMPResult(saved["sparsity"], saved["metrics"]))


def imp_run_job(config: dict[str, Any], run_dir: str) -> None:
    """Job entry point (shared.train.jobs): one IMP run of imp_job_config's config, resumed from the
    progress and checkpoints in run_dir; its rows of the curves table to run_dir/imp_rows.json."""
    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    limit_threads(config["threads"])
    resume_or_reset(folder, config, clear=["checkpoints", PROGRESS])   # another config's run is removed
    train_set, test_set = _job_data(config)
    train = ClassifierTrainSpec.from_dict(config["train"])
    imp = SweepImpSpec.from_dict(config["imp"])
    torch.manual_seed(config["run_seed"])
    model = build_classifier(config["model"], train_set)
    resume = _load_progress(folder)
    if resume is not None:
        print(f"resuming after IMP level {resume.level}")

    def level_done(progress: ImpProgress) -> None:
        shutil.rmtree(folder / "checkpoints", ignore_errors=True)     # before the progress: see the docstring
        if (folder / "metrics.jsonl").exists():
            (folder / "levels").mkdir(exist_ok=True)
            shutil.copyfile(folder / "metrics.jsonl", folder / "levels" / f"level{progress.level}.jsonl")
        _save_progress(folder, progress)

    result = lottery_imp(model, train_set, test_set, train, imp, config["run_seed"], imp.continue_after_rewind,
                         run_dir=folder, checkpoint_every=config["checkpoint_every"], callbacks=checkpointed,
                         resume=resume, on_level_end=level_done)
    rows = curve_rows(config["arch"], config["dim"], config["seed_index"], result, config["tolerance"])
    write_json_atomic(folder / JOB_ROWS, rows)
    (folder / PROGRESS).unlink(missing_ok=True)
    shutil.rmtree(folder / "checkpoints", ignore_errors=True)


def imp_jobs(spec: ImpSweepSpec, kind: str, seed: int, data_dir: str | Path | None, jobs_dir: str | Path
             ) -> list[Job]:
    """Every IMP run of the sweep as a job, in imp_curves' order (architecture, dimension, seed); the run
    of architecture a, dimension k, seed s in jobs_dir/<a>-k<k>-seed<s>."""
    return [Job(f"{arch}/k{dim}/seed{s}", JOB_ENTRY_POINT, imp_job_config(spec, kind, arch, dim, s, seed, data_dir),
                Path(jobs_dir) / f"{arch}-k{dim}-seed{s}")
            for arch in spec.archs for dim in spec.dims for s in spec.seeds]


def imp_curves_as_jobs(spec: ImpSweepSpec, kind: str, seed: int, data_dir: str | Path | None,
                       jobs_dir: str | Path, slots: int = 1, nnodes: int = 1, launcher: str | None = None,
                       in_process: bool | None = None) -> pd.DataFrame:
    """imp_curves' table (same rows, same order) with every IMP run a job (shared.train.jobs.run_jobs:
    `slots` at a time on each of `nnodes` nodes, one GPU each, started as `launcher` says; one slot on one
    node: here, one after another). kind: "manifolds" (spec.data a ManifoldDataSpec) or "images" (an
    ImageDataSpec, read from data_dir)."""
    jobs = imp_jobs(spec, kind, seed, data_dir, jobs_dir)
    run_jobs(jobs, slots=slots, nnodes=nnodes, launcher=launcher, in_process=in_process)
    rows = []
    for job in jobs:
        rows += json.loads((job.run_dir / JOB_ROWS).read_text())
    return pd.DataFrame(rows)
