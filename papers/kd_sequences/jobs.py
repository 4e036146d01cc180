"""01_sequences' trainings as jobs of shared.train.jobs: one process per GPU, resumable.

    results, info = run_sequences_as_jobs(spec, seed, data_dir, run.out_dir / "jobs", slots=nproc_per_node,
                                          nnodes=nnodes, launcher=launcher)

The same trainings, seeds and rows as sequences.run_sequences, in two phases of jobs:

1. one job per (sequence, seed s): run 0 from scratch at the full budget, in jobs_dir/run0/<sequence>-s<s>
   (the trainer's folder: metrics.jsonl, checkpoints); it writes its row (row.json) and model (model.pt,
   the state_dict that teaches run 1 of every KD method).
2. one job per (sequence, seed s, method): the method's chain over runs 1.. in
   jobs_dir/chains/<sequence>-s<s>-<method>, each run at every budget in the order run_sequences trains them, each
   training in its own folder run<k>-<steps> (the trainer's: metrics.jsonl, a checkpoint every
   spec.checkpoint_every steps). A finished training leaves its row (row.json) and, when it teaches the next
   run, its model (model.pt), so a restarted chain skips finished trainings and resumes the interrupted one
   from its checkpoint (the teacher's forward counts are in the checkpoint). The chain's rows: rows.json.

Each job reads the data itself (load_image_data, then sequences.training_data's label noise). With one slot on
one node the jobs run here, one after another (run_jobs' in-process path), and give run_sequences' results.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from shared.data.images import ImageSet
from shared.pipelines.vision_classification import build_classifier, limit_threads, load_image_data
from shared.train.jobs import Job, resume_or_reset, run_jobs
from shared.utils.io import write_json_atomic
from shared.utils.runtime import default_device

from .sequences import (SequencesSpec, budgets, methods, results_table, seed_base, sequence_runs, train_one,
                        training_data)

FIRST_RUN_ENTRY_POINT = "papers.kd_sequences.jobs:first_run_job"
CHAIN_ENTRY_POINT = "papers.kd_sequences.jobs:chain_job"
ROW_FILE, ROWS_FILE, MODEL_FILE = "row.json", "rows.json", "model.pt"


def job_config(spec: SequencesSpec, sequence: str, s: int, seed: int, data_dir: str | Path | None,
               method: str | None = None, first_run_dir: str | Path | None = None) -> dict[str, Any]:
    """A job's config: the spec cut to this sequence, seed s and (a chain's) method, so that adding
    sequences, seeds or strategies leaves the other jobs' configs, and their finished jobs, as they are."""
    strategies = {method: spec.strategies[method]} if method in spec.strategies else {}
    one = dataclasses.replace(spec, sequences={sequence: spec.sequences[sequence]}, seeds=(s,),
                              strategies=strategies)
    config = {"spec": one.to_dict(), "sequence": sequence, "s": s, "seed": seed,
              "data_dir": None if data_dir is None else str(data_dir)}
    if method is not None:
        config.update(method=method, first_run_dir=str(first_run_dir))
    return config


def _job_data(config: dict[str, Any]) -> tuple[SequencesSpec, ImageSet, ImageSet, int]:
    spec = SequencesSpec.from_dict(config["spec"])
    limit_threads(spec.threads)
    train_set, test_set = load_image_data(spec.data, config["data_dir"])
    train_set, flops = training_data(spec, train_set)
    return spec, train_set, test_set, flops


def _save_model(model: nn.Module, path: Path) -> None:
    partial = path.with_suffix(".partial")
    torch.save(model.state_dict(), partial)
    partial.replace(path)


def _load_model(spec: SequencesSpec, train_set: ImageSet, path: Path) -> nn.Module:
    model = build_classifier(spec.model, train_set)
    model.load_state_dict(torch.load(path, map_location="cpu"))
    return model.to(default_device())


def _finish_training(folder: Path, row: dict, model: nn.Module | None) -> None:
    """Write a finished training's model (if it teaches) and then its row, the mark that it is done; drop
    its checkpoints."""
    if model is not None:
        _save_model(model, folder / MODEL_FILE)
    shutil.rmtree(folder / "checkpoints", ignore_errors=True)
    write_json_atomic(folder / ROW_FILE, row)


def first_run_job(config: dict[str, Any], run_dir: str) -> None:
    """Job entry point: run 0 of one sequence and seed (job_config without a method), trained in run_dir
    (resumed from its checkpoint when run_dir holds this config's); writes row.json (its row, with
    forward_flops_per_example) and model.pt."""
    spec, train_set, test_set, flops = _job_data(config)
    seq, s = config["sequence"], config["s"]
    lr, data = sequence_runs(spec, seq, train_set)[0]
    resume_or_reset(run_dir, config, clear=["checkpoints"])      # another config's checkpoints are removed
    model, row = train_one(spec, lr, data, test_set, spec.train.max_steps, seed_base(config["seed"], s), None,
                           None, flops, run_dir=run_dir)
    _finish_training(Path(run_dir), {"sequence": seq, "run": 0, "method": "scratch", "seed": s, "lr": lr,
                                     "train_examples": len(data), **row, "forward_flops_per_example": flops},
                     model)


def chain_job(config: dict[str, Any], run_dir: str) -> None:
    """Job entry point: every later run of one sequence, seed and method (job_config with a method) at every
    budget, as run_sequences trains them, each in run_dir/run<k>-<steps> (marked with this config's hash);
    skips the finished trainings of this config, resumes its unfinished one; writes rows.json (the rows in
    training order)."""
    spec, train_set, test_set, flops = _job_data(config)
    seq, s, method = config["sequence"], config["s"], config["method"]
    schedule = methods(spec)[method]
    runs_spec, steps_grid, base = sequence_runs(spec, seq, train_set), budgets(spec), seed_base(config["seed"], s)
    teacher, teacher_file = None, Path(config["first_run_dir"]) / MODEL_FILE
    rows = []
    for k, (lr, data) in enumerate(runs_spec[1:], start=1):
        model = folder = None
        for steps in steps_grid:
            folder = Path(run_dir) / f"run{k}-{steps}"
            # this config's training resumes (or is skipped when finished); another config's is removed
            if resume_or_reset(folder, config) and (folder / ROW_FILE).exists():
                rows.append(json.loads((folder / ROW_FILE).read_text()))
                model = None
                continue
            if schedule is not None and teacher is None:
                teacher = _load_model(spec, train_set, teacher_file)
            model, row = train_one(spec, lr, data, test_set, steps, base + k, None if schedule is None else teacher,
                                   schedule, flops, run_dir=folder)
            row = {"sequence": seq, "run": k, "method": method, "seed": s, "lr": lr, "train_examples": len(data),
                   **row}
            teaches = schedule is not None and steps == steps_grid[-1] and k < len(runs_spec) - 1
            _finish_training(folder, row, model if teaches else None)
            rows.append(row)
        if schedule is not None:        # the last budget's model of this run teaches the next run
            teacher, teacher_file = model, folder / MODEL_FILE
    write_json_atomic(Path(run_dir) / ROWS_FILE, rows)


def sequence_jobs(spec: SequencesSpec, seed: int, data_dir: str | Path | None, jobs_dir: str | Path
                  ) -> tuple[list[Job], list[Job]]:
    """(phase 1, phase 2): the run-0 job of every sequence and seed, then the chain job of every sequence,
    seed and method, each in the order run_sequences trains them."""
    jobs_dir = Path(jobs_dir)
    first, chains = [], []
    for seq in spec.sequences:
        for s in spec.seeds:
            first_dir = jobs_dir / "run0" / f"{seq}-s{s}"
            first.append(Job(f"{seq}/s{s}/run0", FIRST_RUN_ENTRY_POINT, job_config(spec, seq, s, seed, data_dir),
                             first_dir))
            chains += [Job(f"{seq}/s{s}/{method}", CHAIN_ENTRY_POINT,
                           job_config(spec, seq, s, seed, data_dir, method, first_dir),
                           jobs_dir / "chains" / f"{seq}-s{s}-{method}")
                       for method in methods(spec)]
    return first, chains


def run_sequences_as_jobs(spec: SequencesSpec, seed: int, data_dir: str | Path | None, jobs_dir: str | Path,
                          slots: int = 1, nnodes: int = 1, launcher: str | None = None,
                          in_process: bool | None = None, skip_finished: bool | None = None
                          ) -> tuple[pd.DataFrame, dict]:
    """Every training of run_sequences as jobs (sequence_jobs; shared.train.jobs.run_jobs: `slots` at a time on
    each of `nnodes` nodes, one GPU each, started as `launcher` says; one slot on one node: here, one after
    another); returns run_sequences' (results, info). in_process, skip_finished: as run_jobs (default: in
    process with one slot on one node; skip finished jobs unless in process). Jobs that are not skipped start
    afresh: their folders are cleared first."""
    started = time.time()
    in_process = slots == 1 and nnodes == 1 if in_process is None else in_process
    skip_finished = not in_process if skip_finished is None else skip_finished
    first, chains = sequence_jobs(spec, seed, data_dir, jobs_dir)
    if not skip_finished:
        for job in first + chains:
            shutil.rmtree(job.run_dir, ignore_errors=True)
    for phase in (first, chains):
        run_jobs(phase, slots=slots, nnodes=nnodes, launcher=launcher, in_process=in_process,
                 skip_finished=skip_finished)
    rows, flops, per_first = [], None, len(methods(spec))
    for i, job in enumerate(first):
        row = json.loads((job.run_dir / ROW_FILE).read_text())
        flops = row.pop("forward_flops_per_example")
        rows.append(row)
        for chain in chains[i * per_first:(i + 1) * per_first]:
            rows += json.loads((chain.run_dir / ROWS_FILE).read_text())
    return results_table(rows), {"budgets": budgets(spec), "forward_flops_per_example": flops,
                                 "seconds_total": time.time() - started}
