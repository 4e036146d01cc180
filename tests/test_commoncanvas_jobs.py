"""03_data_scarcity's sizes as jobs (papers/commoncanvas/scene_jobs.py): the jobs' results equal the same runs
here; a job preempted after its first periodic checkpoint resumes from it (EMA weights included) and ends
with the same result; a finished job is skipped on a rerun."""
from __future__ import annotations

import json
import os
import shutil

import pytest
import torch

from _train_toy import PreemptAtCheckpoint, Preempted
from papers.commoncanvas.scales import T2ITrainSpec
from papers.commoncanvas.scene_jobs import (MODEL_FILE, RESULT_FILE, TRAIN_DIR, components_sha1, job_results,
                                            scarcity_jobs, train_scarcity_jobs)
from papers.commoncanvas.scene_t2i import (build_scene_t2i, load_components, new_components, save_components,
                                           scene_training_data)
from papers.commoncanvas.scenes import SceneConfig, generate_compositions, split_compositions
from papers.commoncanvas.text_to_image import train_diffusion
from shared.models.diffusion import AutoencoderConfig
from shared.train import TrainConfig
from shared.train.ema import EMA_FILE
from shared.train.jobs import DONE_MARKER, JOB_LOG, run_jobs
from shared.train.launch import REPO_ROOT
from shared.train.trainer import REHEARSAL_CRASH_MARKER

SCENE = SceneConfig(image_size=16, counts=(1, 2))
MODEL = {"block_out_channels": [16, 16], "layers_per_block": 1,
         "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
         "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"], "attention_heads": 2, "norm_num_groups": 8,
         "pooled_text_conditioning": True, "snr_gamma": 5.0, "caption_dropout": 0.1, "train_text_encoder": False,
         "beta_schedule": "squaredcos_cap_v2", "prediction_type": "epsilon",
         "text": {"hidden_size": 16, "num_layers": 1, "num_heads": 2}}
TRAIN = {"max_steps": 4, "global_batch_size": 4, "lr": 3e-3, "warmup_steps": 1, "ema_half_life": 2.0,
         "checkpoint_every": 2}
TEL_SPEC = {"model": MODEL, "train": TRAIN, "eval": {"prompts": 8, "sampling_steps": 2, "guidance_scale": 3.0}}
ENV = {"PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def components_dir(tmp_path_factory):
    ae = AutoencoderConfig(block_out_channels=(8, 8), latent_channels=4, layers_per_block=1, norm_num_groups=4,
                           mid_block_attention=False)
    comps = new_components(SCENE, ae, {"channels": (8, 8), "feature_dim": 8}, {"channels": (8, 8), "feature_dim": 8})
    return save_components(comps, tmp_path_factory.mktemp("components") / "components")


def _jobs(components_dir, jobs_dir, sizes=(6, 12)):
    train, held_out = split_compositions(SCENE, 4)
    return scarcity_jobs(list(sizes), components_dir, TEL_SPEC, 12, train, held_out, 0, jobs_dir)


def _without_seconds(trained):
    return {n: ({k: v for k, v in seen.items() if k != "train_s"}, held) for n, (seen, held) in trained.items()}


def test_preempted_jobs_resume_and_equal_the_runs_here(components_dir, tmp_path):
    """Two subprocess jobs (2 slots), each killed once after its checkpoint at step 2 (SHARED_REHEARSAL_CRASH)
    and restarted, end with the scores of the same runs in this process, uninterrupted."""
    threads = torch.get_num_threads()
    here = train_scarcity_jobs(_jobs(components_dir, tmp_path / "here"), slots=1)      # in process
    torch.set_num_threads(threads)
    jobs = _jobs(components_dir, tmp_path / "pool")
    run_jobs(jobs, slots=2, gpus=[], max_restarts=1, env={**ENV, "SHARED_REHEARSAL_CRASH": "1"})
    pooled = job_results(jobs)
    assert list(pooled) == [6, 12]
    assert _without_seconds(pooled) == _without_seconds(here)
    for job in jobs:
        assert (job.run_dir / TRAIN_DIR / REHEARSAL_CRASH_MARKER).read_text().split() == ["2"]
        assert json.loads((job.run_dir / DONE_MARKER).read_text())["attempts"] == 2
        assert f"resuming from {job.run_dir / TRAIN_DIR}/checkpoints/" in (job.run_dir / JOB_LOG).read_text()
        assert (job.run_dir / MODEL_FILE).exists() and not (job.run_dir / TRAIN_DIR / "checkpoints").exists()
    # a rerun of the pool skips the finished jobs
    before = {j.name: (j.run_dir / RESULT_FILE).stat().st_mtime_ns for j in jobs}
    run_jobs(jobs, slots=2, gpus=[], env=ENV)
    assert {j.name: (j.run_dir / RESULT_FILE).stat().st_mtime_ns for j in jobs} == before


def test_the_ema_weights_travel_with_the_checkpoints(components_dir, tmp_path):
    """train_diffusion's EMA is saved in each checkpoint and restored on resume: a run stopped after its
    checkpoint at step 2 and resumed ends with the EMA weights of an uninterrupted run."""
    comps = load_components(components_dir)
    data = generate_compositions(8, SCENE, split_compositions(SCENE, 4)[0], seed=1)
    spec = T2ITrainSpec.from_dict(TRAIN)

    def train(run_dir, fresh, callbacks=()):
        model = build_scene_t2i(comps, dict(MODEL), seed=0)
        batches = {k: v.cpu() for k, v in scene_training_data(model, comps, data).items()}
        config = TrainConfig(max_steps=spec.max_steps, lr=spec.lr, warmup_steps=spec.warmup_steps, seed=0,
                             device="cpu", progress_bar=False, log_every=1, run_dir=str(run_dir),
                             checkpoint_every=spec.checkpoint_every)
        return train_diffusion(model, batches, config, spec.global_batch_size, ema_half_life=spec.ema_half_life,
                               fresh=fresh, callbacks=callbacks)[1]

    whole = train(tmp_path / "whole", fresh=True)
    with pytest.raises(Preempted):
        train(tmp_path / "parts", fresh=True, callbacks=[PreemptAtCheckpoint(2)])
    assert any((tmp_path / "parts" / "checkpoints").glob(f"step_00000002/{EMA_FILE}"))
    resumed = train(tmp_path / "parts", fresh=False)
    assert resumed.num_updates == whole.num_updates == 4
    for name in whole.names:
        torch.testing.assert_close(resumed.shadow[name], whole.shadow[name], rtol=0, atol=0)


def test_jobs_hold_json_configs_and_one_folder_each(components_dir, tmp_path):
    jobs = _jobs(components_dir, tmp_path / "jobs")
    assert [j.name for j in jobs] == ["n6", "n12"]
    assert len({j.run_dir for j in jobs}) == 2
    for job in jobs:
        assert json.loads(json.dumps(job.config)) == job.config
        assert job.config["components_sha1"] and job.config["train"]["checkpoint_every"] == 2
    assert os.path.basename(jobs[0].run_dir) == "n6"
    # other networks from 01_components: another config, so the finished job is not reused
    other = tmp_path / "other_components"
    shutil.copytree(components_dir, other)
    assert components_sha1(other) == jobs[0].config["components_sha1"]
    (other / "recognizer.safetensors").write_bytes(b"other weights")
    assert components_sha1(other) != jobs[0].config["components_sha1"]
