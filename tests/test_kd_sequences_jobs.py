"""papers.kd_sequences.jobs: 01_sequences' trainings as jobs give run_sequences' rows, a chain preempted
mid-way resumes to the same rows (teacher counts included), a rerun skips finished jobs; DistillationLoss's
counts survive a resume; the rehearsal only shrinks the full preset, preempts every job and its data_dir passes
the full preflight; ci/rehearsal.verify finds a chain's preemption in the folder of the training it hit."""
import json
import time

import pandas as pd
import pytest
import torch

from _train_toy import PreemptAtCheckpoint, Preempted
from conftest import load_ci_module

from papers.kd_sequences import rehearsal, scales
from papers.kd_sequences.jobs import ROW_FILE, run_sequences_as_jobs, sequence_jobs
from papers.kd_sequences.sequences import run_sequences
from shared.data.images import ImageSet
from shared.preflight import preflight
from shared.pipelines.vision_classification import (ClassifierTrainSpec, DistillationSpec, KDSchedule, build_classifier,
                                                    distillation_loss, load_image_data, train_classifier)
from shared.train.jobs import STAMP_FILE, run_jobs
from shared.train.trainer import REHEARSAL_CRASH_MARKER

WALL_CLOCK = ["wall_s", "teacher_s"]
# digits, MLP 16, two sequences of 3 runs, budgets 2 and 6 steps: a checkpoint every 4 steps is taken only
# by the 6-step trainings (the first budget of a chain ends before one)
TINY = {"model": {"arch": "mlp", "hidden": [16]}, "train": {"max_steps": 6, "global_batch_size": 16},
        "budget_fractions": [0.34, 1.0], "seeds": [0], "checkpoint_every": 4,
        "strategies": {"kd_sparse": {"stop_fraction": 1.0, "every": 2}},
        "sequences": {"hparam_search": {"lrs": [2e-3, 1e-3, 4e-3]}, "new_data": {"data_fractions": [0.4, 0.7, 1.0]}}}


def _spec(**more):
    return scales.NOTEBOOKS["01_sequences"].build("smoke", {**TINY, **more})


def _reference(spec):
    train_set, test_set = load_image_data(spec.data)
    return run_sequences(spec, train_set, test_set, seed=3)


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.drop(columns=WALL_CLOCK), b.drop(columns=WALL_CLOCK), check_exact=True)


def test_jobs_in_process_give_the_serial_rows(tmp_path):
    spec = _spec()
    expected, info = _reference(spec)
    results, job_info = run_sequences_as_jobs(spec, 3, None, tmp_path / "jobs")
    _same(results, expected)
    assert list(spec.strategies) == ["kd", "kd_early", "kd_sparse"]
    assert len(results) == 2 * (1 + 4 * 2 * 2)
    assert job_info["budgets"] == info["budgets"] == [2, 6]
    assert job_info["forward_flops_per_example"] == info["forward_flops_per_example"]
    assert (results["teacher_forward_examples"] > 0).sum() == 2 * 3 * 2 * 2     # sequences x KD methods x runs x budgets


def test_a_preempted_chain_resumes_to_the_same_rows_and_a_rerun_skips_finished_jobs(tmp_path):
    spec = _spec(sequences={"hparam_search": TINY["sequences"]["hparam_search"]})
    expected, _ = _reference(spec)
    env = {"SHARED_REHEARSAL_CRASH": "1", "OMP_NUM_THREADS": "1"}
    first, chains = sequence_jobs(spec, 3, None, tmp_path / "jobs")
    run_jobs(first, slots=1, in_process=True)
    kd = [job for job in chains if job.name.endswith("/kd")]
    run_jobs(kd, slots=2, gpus=[], env=env, max_restarts=1)            # exits after its first checkpoint, retried
    crashed = kd[0].run_dir / "run1-6" / REHEARSAL_CRASH_MARKER
    assert crashed.read_text().split() == ["4"]
    # run 1's 2-step training had finished before the preemption: the retry kept it
    assert (kd[0].run_dir / "run1-2" / ROW_FILE).stat().st_mtime < crashed.stat().st_mtime
    assert json.loads((kd[0].run_dir / "job_done.json").read_text())["attempts"] == 2
    # the other chains run here; the finished jobs are skipped
    results, _ = run_sequences_as_jobs(spec, 3, None, tmp_path / "jobs", in_process=True, skip_finished=True)
    _same(results, expected)
    started = time.time()
    again, _ = run_sequences_as_jobs(spec, 3, None, tmp_path / "jobs", slots=2)
    assert time.time() - started < 10                                           # every job finished before
    _same(again, results)
    assert all(json.loads((job.run_dir / "job_done.json").read_text())["attempts"] == 1 for job in chains
               if job not in kd)


def test_a_training_of_another_config_is_started_afresh(tmp_path):
    spec = _spec(sequences={"hparam_search": TINY["sequences"]["hparam_search"]})
    _, chains = sequence_jobs(spec, 3, None, tmp_path / "jobs")
    stale = chains[0].run_dir / "run1-2"
    stale.mkdir(parents=True)
    (stale / STAMP_FILE).write_text(json.dumps({"config_sha1": "another"}))
    (stale / ROW_FILE).write_text(json.dumps({"test_acc": -1.0}))
    results, _ = run_sequences_as_jobs(spec, 3, None, tmp_path / "jobs", in_process=True, skip_finished=True)
    assert results["test_acc"].min() >= 0.0
    _same(results, _reference(spec)[0])


def test_distillation_counts_are_checkpointed_and_resumed(tmp_path):
    torch.manual_seed(0)
    data = ImageSet(torch.randn(64, 1, 4, 4), torch.arange(64) % 4, tuple("abcd"))
    train = ClassifierTrainSpec(max_steps=6, global_batch_size=8, lr=1e-2, augment=None)
    torch.manual_seed(1)
    teacher = build_classifier({"arch": "mlp", "hidden": [8]}, data)

    def run(run_dir, callbacks=()):
        torch.manual_seed(2)
        student = build_classifier({"arch": "mlp", "hidden": [8]}, data)
        loss = distillation_loss([teacher], 6, DistillationSpec(), KDSchedule(every=2))
        trainer = train_classifier(student, data, train, seed=0, loss_fn=loss, run_dir=run_dir, checkpoint_every=3,
                                   callbacks=callbacks)
        return loss, trainer

    whole, whole_trainer = run(tmp_path / "whole")
    with pytest.raises(Preempted):
        run(tmp_path / "resumed", [PreemptAtCheckpoint(3)])
    resumed, resumed_trainer = run(tmp_path / "resumed")
    assert whole.teacher_forward_examples == resumed.teacher_forward_examples == 3 * 8       # steps 0, 2, 4
    assert resumed.teacher_seconds > 0
    for a, b in zip(whole_trainer.model.parameters(), resumed_trainer.model.parameters()):
        assert torch.equal(a, b)


def test_rehearsal_overrides_only_shrink_and_preempt_every_job():
    presets = scales.NOTEBOOKS["01_sequences"]
    full, shrunk = presets.build("full"), presets.build("full", rehearsal.NOTEBOOKS["01_sequences"])
    assert shrunk.train.max_steps < full.train.max_steps and set(shrunk.seeds) <= set(full.seeds)
    assert set(shrunk.budget_fractions) <= set(full.budget_fractions)
    for name, sequence in shrunk.sequences.items():
        runs, full_runs = sequence.lrs or sequence.data_fractions, full.sequences[name].lrs or full.sequences[name].data_fractions
        assert len(runs) >= 3 and set(runs) <= set(full_runs)          # run 2 learns from run 1's model
    assert 0 < shrunk.checkpoint_every < shrunk.train.max_steps           # run 0 and each chain's 4-step run 1
    assert (shrunk.model, shrunk.strategies, shrunk.distillation, shrunk.data) == \
        (full.model, full.strategies, full.distillation, full.data)
    assert shrunk.train.to_dict() == {**full.train.to_dict(), "max_steps": 4, "global_batch_size": 10}


def test_the_rehearsal_data_dir_passes_the_full_preflight(tmp_path):
    rehearsal.make_data_dir(tmp_path)
    report = preflight("kd_sequences", scale="full", data_dir=str(tmp_path))
    data_errors = [e for e in report["errors"] if "GiB" not in e]
    assert not data_errors, data_errors
    train_set, test_set = load_image_data(scales.NOTEBOOKS["01_sequences"].build("full").data, tmp_path)
    assert (len(train_set), len(test_set)) == (rehearsal.TRAIN_EXAMPLES, rehearsal.TEST_EXAMPLES)


def test_verify_finds_a_chains_preemption_in_its_training_folder(tmp_path):
    ci_rehearsal = load_ci_module("rehearsal")
    chain = tmp_path / "jobs" / "chains" / "s-kd"
    (chain / "logs").mkdir(parents=True)
    (chain / "launch_config.json").write_text("{}")
    (chain / "logs" / "job.log").write_text("=== attempt 0 (node node0, slot 0\n=== attempt 1 (node node1, slot 0\n")
    (chain / "job_done.json").write_text(json.dumps({"attempts": 2}))
    for folder, crashed in (("run1-2", False), ("run1-4", True)):
        (chain / folder).mkdir()
        (chain / folder / "metrics.jsonl").write_text("".join(json.dumps({"kind": "train", "step": s}) + "\n"
                                                             for s in (1, 2, 3, 4)))
        if crashed:
            (chain / folder / REHEARSAL_CRASH_MARKER).write_text("2\n")
    report = ci_rehearsal.verify(tmp_path)
    assert (report["jobs"], report["resumed"], report["not_preempted"], report["problems"]) == (1, 1, [], [])
