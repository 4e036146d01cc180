"""Checkpoints: atomic writes, verified loads; corrupt or mismatched ones are refused with a
clear error and leave the model untouched."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

import shared.train.checkpoint as ckpt
from _train_toy import TinyLM, ToyNet, classify_loss, make_data
from shared.train import (CheckpointError, ResumableBatches, Trainer, TrainConfig,
                          latest_checkpoint, list_checkpoints, load_model_weights, verify_checkpoint)


def _trainer(run_dir, steps=4, model=None, **kw):
    torch.manual_seed(0)
    cfg = TrainConfig(max_steps=steps, lr=1e-2, progress_bar=False, run_dir=str(run_dir), **kw)
    return Trainer(model or ToyNet(), classify_loss, ResumableBatches(make_data(), 8), cfg)


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


def _same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    _trainer(run).fit()
    return latest_checkpoint(run)


def _corrupt_copy(src, dst, damage):
    shutil.copytree(src, dst)
    damage(dst)
    return dst


def _truncate(d):
    f = d / "model.safetensors"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def _flip(d):
    f = d / "optimizer.pt"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))


@pytest.mark.parametrize("damage,message", [
    (_truncate, "truncated"),
    (_flip, "sha256"),
    (lambda d: (d / "rank_00000.pt").unlink(), "missing"),
    (lambda d: (d / "manifest.json").unlink(), "incomplete"),
    (lambda d: (d / "manifest.json").write_text("{not json"), "unreadable"),
])
def test_corrupt_checkpoint_refused_model_untouched(trained, tmp_path, damage, message):
    bad = _corrupt_copy(trained, tmp_path / "bad", damage)
    fresh = _trainer(tmp_path / "other", resume=str(bad))
    before = _params(fresh.model)
    with pytest.raises(CheckpointError, match=message):
        fresh.fit()
    assert fresh.step == 0 and _same(before, _params(fresh.model))
    with pytest.raises(CheckpointError):
        verify_checkpoint(bad)


def test_corrupt_latest_is_refused_on_resume(tmp_path):
    _trainer(tmp_path).fit()
    _flip(latest_checkpoint(tmp_path))
    again = _trainer(tmp_path, steps=8)
    before = _params(again.model)
    with pytest.raises(CheckpointError, match="corrupt"):
        again.fit()
    assert _same(before, _params(again.model))


def test_mismatched_model_refused_untouched(trained, tmp_path):
    other = _trainer(tmp_path, model=ToyNet(d=16), resume=str(trained))
    before = _params(other.model)
    with pytest.raises(CheckpointError, match="shape"):
        other.fit()
    assert _same(before, _params(other.model))


def test_crash_mid_write_keeps_previous_latest(tmp_path, monkeypatch):
    t = _trainer(tmp_path, steps=4, checkpoint_every=2)
    t.fit(until_step=2)
    assert latest_checkpoint(tmp_path).name == "step_00000002"
    real_save = torch.save

    def failing_save(obj, f, *a, **k):
        if str(f).endswith("trainer_state.pt"):
            raise OSError("disk full (simulated)")
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(ckpt.torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        t.fit()  # steps 3, 4 then the checkpoint write fails half way
    monkeypatch.undo()
    assert latest_checkpoint(tmp_path).name == "step_00000002"
    assert list((tmp_path / "checkpoints").glob(".tmp-*"))  # the half-written dir is left hidden
    resumed = _trainer(tmp_path, steps=4, checkpoint_every=2)
    resumed.fit()
    assert resumed.step == 4 and not list((tmp_path / "checkpoints").glob(".tmp-*"))


def test_keep_last_n(tmp_path):
    _trainer(tmp_path, steps=6, checkpoint_every=1, keep_last_n=2).fit()
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step_00000005", "step_00000006"]
    manifest = json.loads((latest_checkpoint(tmp_path) / "manifest.json").read_text())
    assert manifest["step"] == 6 and manifest["world_size"] == 1 and not manifest["sharded"]


def test_tied_weights_round_trip(tmp_path):
    torch.manual_seed(0)
    lm = TinyLM()
    ids = torch.randint(0, 16, (64, 9))
    cfg = TrainConfig(max_steps=3, lr=1e-2, progress_bar=False, run_dir=str(tmp_path))

    def lm_loss(model, batch):
        logits = model(batch[:, :-1])
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten()), {}

    Trainer(lm, lm_loss, ResumableBatches(ids, 8), cfg).fit()
    fresh = TinyLM()
    load_model_weights(latest_checkpoint(tmp_path), fresh)
    assert fresh.lm_head.weight is fresh.wte.weight  # still tied
    assert torch.equal(fresh.wte.weight, lm.wte.weight) and torch.equal(fresh.mix.weight, lm.mix.weight)


class ExtraFiles:
    """A callback that writes its own file into each checkpoint and reads it back on resume."""

    def __init__(self):
        self.loaded = None

    def on_save_checkpoint(self, trainer, folder):
        torch.save({"step": trainer.step}, folder / "extra.pt")

    def on_load_checkpoint(self, trainer, folder):
        self.loaded = torch.load(folder / "extra.pt")["step"]


def test_callback_files_join_the_manifest(tmp_path):
    torch.manual_seed(0)
    cfg = dict(max_steps=4, progress_bar=False, run_dir=str(tmp_path))
    Trainer(ToyNet(), classify_loss, ResumableBatches(make_data(), 8), TrainConfig(**cfg),
            callbacks=[ExtraFiles()]).fit(until_step=2)
    folder = latest_checkpoint(tmp_path)
    assert "extra.pt" in verify_checkpoint(folder)["files"]
    cb = ExtraFiles()
    Trainer(ToyNet(), classify_loss, ResumableBatches(make_data(), 8), TrainConfig(**cfg),
            callbacks=[cb]).fit()
    assert cb.loaded == 2
    _flip_file(latest_checkpoint(tmp_path) / "extra.pt")
    with pytest.raises(CheckpointError, match="extra.pt fails its sha256"):
        verify_checkpoint(latest_checkpoint(tmp_path))


def _flip_file(f):
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF
    f.write_bytes(bytes(data))
