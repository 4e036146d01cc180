"""papers.prunability.imp_jobs: the IMP sweep as jobs of shared.train.jobs gives imp_curves' table; a job killed
mid-level or between levels resumes (shared.train.pruning.run_imp(resume=...), the level's checkpoints with the
rewind snapshot in them) to the rows of an uninterrupted run; a rerun skips finished jobs. And
papers/prunability/rehearsal.py: its overrides only shrink the full presets and preempt every run, and its
data_dir passes the full preset's preflight."""
from __future__ import annotations

import copy
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from torch import nn

from papers.prunability import imp_jobs, rehearsal
from papers.prunability.imp import ManifoldSweepSpec, imp_curves, manifold_datasets
from papers.prunability.imp_jobs import PROGRESS, imp_curves_as_jobs, imp_jobs as sweep_jobs, imp_run_job
from papers.prunability.scales import NOTEBOOKS
from shared.preflight import preflight
from shared.train.jobs import STAMP_FILE, run_jobs
from shared.train.pruning import ImpProgress, IMPResult, run_imp


def tiny_spec(**fields) -> ManifoldSweepSpec:
    """Manifolds in R^16 of dimension 2 and 3, one MLP, 2 IMP levels of 8 steps."""
    return ManifoldSweepSpec.from_dict({
        "data": {"ambient_dim": 16, "num_classes": 3, "n_train": 120, "n_test": 60, "hidden": 16},
        "dims": [2, 3], "seeds": [0], "archs": {"mlp": {"arch": "mlp", "hidden": [8]}},
        "train": {"max_steps": 8, "global_batch_size": 32, "lr": 3e-3, "optimizer": "adamw", "augment": None},
        "imp": {"fraction": 0.3, "levels": 2}, "threads": 1, **fields})


def test_jobs_in_process_give_the_serial_curves(tmp_path):
    spec = tiny_spec(seeds=[0, 1], archs={"mlp": {"arch": "mlp", "hidden": [8]}, "wide": {"arch": "mlp", "hidden": [12]}},
                     imp={"fraction": 0.3, "levels": 2, "dense_head": ["wide"]})
    datasets, _ = manifold_datasets(spec.data, spec.dims)
    serial = imp_curves(datasets, spec.archs, spec.train, spec.imp, spec.seeds, spec.tolerance, seed=3)
    jobs = imp_curves_as_jobs(spec, "manifolds", 3, None, tmp_path / "jobs")
    pd.testing.assert_frame_equal(jobs, serial, check_exact=True)
    assert not list((tmp_path / "jobs").rglob(PROGRESS)) and not list((tmp_path / "jobs").rglob("checkpoints"))


class Crash(RuntimeError):
    pass


class CrashAt:
    """Raises once, after optimizer step `step` of the `level`-th training this job process runs."""

    def __init__(self, level: int, step: int):
        self.level, self.step, self.fits, self.fired = level, step, -1, False

    def on_fit_start(self, trainer) -> None:
        self.fits += 1

    def on_step_end(self, trainer, record) -> None:
        if not self.fired and self.fits == self.level and trainer.step == self.step:
            self.fired = True
            raise Crash(f"killed at step {self.step} of level {self.level}")


@pytest.mark.parametrize("level, step", [(0, 7), (2, 5), (1, 8)])
def test_a_killed_job_resumes_to_the_rows_of_an_uninterrupted_run(tmp_path, monkeypatch, level, step):
    # rewinding to step 3 and continuing from it: level 0 killed at step 7 resumes from its step-6 checkpoint,
    # past the rewind step, so the snapshot must come from that checkpoint
    spec = tiny_spec(dims=[3], checkpoint_every=3, imp={"fraction": 0.3, "levels": 2, "rewind_step": 3,
                                                        "continue_after_rewind": True})
    job = sweep_jobs(spec, "manifolds", 0, None, tmp_path / "whole")[0]
    imp_run_job(job.config, str(job.run_dir))
    whole = (job.run_dir / imp_jobs.JOB_ROWS).read_text()

    crash = CrashAt(level, step)
    checkpointed = imp_jobs.checkpointed
    monkeypatch.setattr(imp_jobs, "checkpointed", lambda callbacks: [*checkpointed(callbacks), crash])
    killed = tmp_path / "killed"
    with pytest.raises(Crash):
        imp_run_job(job.config, str(killed))
    assert (killed / PROGRESS).exists() == (level > 0)
    # levels after the dense one start at the rewind step 3: their first checkpoint is step 6's
    assert bool(list((killed / "checkpoints").glob("step*"))) == (step >= (6 if level else 3))
    imp_run_job(job.config, str(killed))
    assert (killed / imp_jobs.JOB_ROWS).read_text() == whole
    assert sorted(p.name for p in (killed / "levels").iterdir()) == ["level0.jsonl", "level1.jsonl", "level2.jsonl"]


def test_a_rerun_skips_finished_jobs_and_redoes_a_changed_one(tmp_path):
    spec = tiny_spec()
    jobs = sweep_jobs(spec, "manifolds", 0, None, tmp_path)
    assert [r.status for r in run_jobs(jobs, in_process=True, skip_finished=True)] == ["done", "done"]
    assert [r.status for r in run_jobs(jobs, in_process=True, skip_finished=True)] == ["skipped", "skipped"]
    longer = sweep_jobs(tiny_spec(imp={"fraction": 0.3, "levels": 3}), "manifolds", 0, None, tmp_path / "other")
    assert longer[0].config != jobs[0].config and longer[0].config["run_seed"] == jobs[0].config["run_seed"]
    # an unfinished folder of another config: its progress is not taken over
    (longer[0].run_dir).mkdir(parents=True)
    (jobs[0].run_dir / STAMP_FILE).rename(longer[0].run_dir / STAMP_FILE)
    torch.save({"level": 5}, longer[0].run_dir / PROGRESS)
    imp_run_job(longer[0].config, str(longer[0].run_dir))
    rows = pd.read_json(longer[0].run_dir / imp_jobs.JOB_ROWS)
    assert list(rows["level"]) == [0, 1, 2, 3]


def _train_fn(data: torch.Tensor, target: torch.Tensor):
    def train(model: nn.Module, masks, callbacks) -> dict:
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(5):
            opt.zero_grad()
            nn.functional.mse_loss(model(data), target).backward()
            opt.step()
            for cb in callbacks:
                if hasattr(cb, "on_step_end"):
                    cb.on_step_end(SimpleNamespace(step=0), None)
        with torch.no_grad():
            return {"loss": float(nn.functional.mse_loss(model(data), target))}
    return train


def test_run_imp_resumes_from_the_progress_of_a_level():
    torch.manual_seed(0)
    data, target = torch.randn(32, 6), torch.randn(32, 2)

    def model():
        torch.manual_seed(1)
        return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2))

    saved: list[ImpProgress] = []
    whole = run_imp(model(), _train_fn(data, target), levels=3, fraction=0.3, on_level_end=lambda p: saved.append(
        ImpProgress(p.level, copy.deepcopy(p.masks), copy.deepcopy(p.weights), copy.deepcopy(p.rewind_state),
                    p.rewind_data_state, IMPResult(list(p.result.sparsity), list(p.result.metrics)))))
    assert [p.level for p in saved] == [0, 1, 2, 3]
    assert run_imp(model(), _train_fn(data, target), levels=3, fraction=0.3) == whole      # the default is as before
    for progress in saved[:3]:
        resumed = run_imp(model(), _train_fn(data, target), levels=3, fraction=0.3, resume=progress)
        assert resumed.sparsity == whole.sparsity and resumed.metrics == whole.metrics


def test_rehearsal_overrides_only_shrink_and_preempt_every_run():
    for notebook, overrides in rehearsal.NOTEBOOKS.items():
        full, shrunk = NOTEBOOKS[notebook].build("full"), NOTEBOOKS[notebook].build("full", overrides)
        assert set(shrunk.dims) <= set(full.dims) and set(shrunk.seeds) <= set(full.seeds)
        assert shrunk.imp.levels < full.imp.levels and shrunk.train.max_steps < full.train.max_steps
        assert 0 < shrunk.checkpoint_every < shrunk.train.max_steps
        assert shrunk.imp.rewind_step < shrunk.checkpoint_every           # the crash comes after the snapshot
        assert list(shrunk.archs) == list(full.archs)
        assert shrunk.train.optimizer == full.train.optimizer and shrunk.train.schedule == full.train.schedule
        assert (shrunk.imp.continue_after_rewind, shrunk.imp.dense_head) == (full.imp.continue_after_rewind,
                                                                            full.imp.dense_head)
        assert shrunk.data.to_dict().keys() == full.data.to_dict().keys()


def test_the_rehearsal_data_dir_passes_the_full_preflight(tmp_path):
    rehearsal.make_data_dir(tmp_path)
    report = preflight("prunability", scale="full", data_dir=str(tmp_path))
    data_errors = [e for e in report["errors"] if "GiB" not in e]
    assert not data_errors, data_errors
