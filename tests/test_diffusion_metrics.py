"""Quality metrics: the Frechet distance against closed forms, FID ~0 on identical sets and > 0 on
different ones, caption consistency high for true captions and near chance for shuffled ones,
and the EMA callback."""
import numpy as np
import pytest
import torch

from papers.commoncanvas.scenes import SceneConfig, generate_scenes
from papers.commoncanvas.image_metrics import (caption_consistency, feature_statistics, fid, frechet_distance,
                                               recognizer_feature_fn)
from papers.commoncanvas.scene_recognizer import RecognizerConfig, SceneRecognizer, attribute_loss
from shared.train import TrainConfig
from shared.train.ema import EMA
from papers.commoncanvas.text_to_image import train_recognizer

CFG = SceneConfig(image_size=16)


@pytest.fixture(scope="module")
def recognizer():
    torch.manual_seed(0)
    data = generate_scenes(2000, CFG, seed=1)
    net = SceneRecognizer(RecognizerConfig(channels=(16, 32), feature_dim=64, num_classes=CFG.num_classes()))
    train_recognizer(net, {"images": data.float_images(), **data.labels},
                     TrainConfig(max_steps=150, lr=3e-3, warmup_steps=10, precision="fp32", progress_bar=False),
                     batch_size=64)
    return net


def test_frechet_distance_closed_forms():
    mu, sigma = np.array([1.0, -2.0]), np.array([[2.0, 0.3], [0.3, 1.0]])
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-6)
    # diagonal covariances: |mu1 - mu2|^2 + sum (sqrt(s1) - sqrt(s2))^2
    d = frechet_distance(np.zeros(2), np.diag([1.0, 4.0]), np.array([3.0, 0.0]), np.diag([4.0, 9.0]))
    assert d == pytest.approx(9.0 + 1.0 + 1.0)
    m, s = feature_statistics(np.random.default_rng(0).normal(size=(5000, 3)))
    assert np.abs(m).max() < 0.1 and np.abs(s - np.eye(3)).max() < 0.1
    with pytest.raises(ValueError):
        feature_statistics(np.zeros(3))


def test_fid_identical_sets_zero_different_sets_positive(recognizer):
    feats = recognizer_feature_fn(recognizer)
    real = generate_scenes(400, CFG, seed=7).float_images()
    other_real = generate_scenes(400, CFG, seed=8).float_images()
    only_red = generate_scenes(400, SceneConfig(colours=("red",)), seed=9).float_images()
    noise = torch.rand(400, 3, 16, 16) * 2 - 1
    same = fid(feats, real, real)
    resample = fid(feats, real, other_real)
    red = fid(feats, real, only_red)
    rand = fid(feats, real, noise)
    assert same < 1e-3
    assert 0 < resample < red < rand, (resample, red, rand)


def test_caption_consistency_true_high_shuffled_low(recognizer):
    data = generate_scenes(400, CFG, seed=11)
    true = caption_consistency(recognizer, data.float_images(), data.labels)
    perm = torch.randperm(400, generator=torch.Generator().manual_seed(0))
    shuffled = caption_consistency(recognizer, data.float_images(), {a: v[perm] for a, v in data.labels.items()})
    assert true["mean"] > 0.9 and true["all"] > 0.7, true
    chance = np.mean([1 / n for n in CFG.num_classes().values()])
    assert abs(shuffled["mean"] - chance) < 0.1 and shuffled["all"] < 0.15, shuffled
    assert set(true) == {"colour", "shape", "position", "count", "mean", "all"}


def test_attribute_loss_and_features_shapes(recognizer):
    x = torch.zeros(2, 3, 16, 16)
    assert recognizer.features(x).shape == (2, 64)
    batch = {"images": x, **{a: torch.zeros(2, dtype=torch.long) for a in CFG.num_classes()}}
    loss, metrics = attribute_loss(recognizer, batch)
    assert loss.ndim == 0 and set(metrics) == {f"acc_{a}" for a in CFG.num_classes()}
    with pytest.raises(ValueError):
        RecognizerConfig(image_size=18)


def test_ema_math_swap_and_schedule():
    lin = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        lin.weight.fill_(0.0)
    ema = EMA(lin, half_life_steps=1.0)
    with torch.no_grad():
        lin.weight.fill_(1.0)
    ema.update(lin)                       # half life 1 step: halfway
    torch.testing.assert_close(ema.shadow["weight"], torch.full((1, 2), 0.5))
    with ema.applied(lin):
        assert torch.allclose(lin.weight, torch.tensor(0.5))
    assert torch.allclose(lin.weight, torch.tensor(1.0))
    every2 = EMA(lin, half_life_steps=2.0, update_every=2, start_step=4)
    assert every2.shadow is None and every2.decay == pytest.approx(0.5)
    assert [s for s in range(10) if every2.should_update(s)] == [4, 6, 8]
    assert not EMA(lin, update_every=0).should_update(4)
    with pytest.raises(ValueError):
        EMA(lin, half_life_steps=0)


def test_ema_survives_checkpoint_resume(tmp_path):
    from shared.train.trainer import Trainer
    from shared.train.data import ResumableBatches

    def run(until=None):
        torch.manual_seed(0)
        model = torch.nn.Linear(4, 1)
        ema = EMA(model, half_life_steps=3.0)
        data = ResumableBatches({"x": torch.randn(64, 4), "y": torch.randn(64, 1)}, 8, seed=0)
        cfg = TrainConfig(max_steps=10, lr=1e-2, precision="fp32", progress_bar=False, run_dir=str(tmp_path / "r"),
                          checkpoint_every=5)
        loss = lambda m, b: (torch.nn.functional.mse_loss(m(b["x"]), b["y"]), {})  # noqa: E731
        Trainer(model, loss, data, cfg, callbacks=[ema]).fit(until_step=until)
        return ema

    run(until=5)
    resumed = run()
    assert (tmp_path / "r" / "checkpoints").exists()
    import shutil
    shutil.rmtree(tmp_path / "r")
    straight = run()
    for k in straight.shadow:
        torch.testing.assert_close(resumed.shadow[k], straight.shadow[k])
