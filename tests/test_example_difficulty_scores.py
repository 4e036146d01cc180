"""papers.example_difficulty.difficulty: each score on hand-checkable examples, and the per-example recorder
as a trainer callback."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from papers.example_difficulty import difficulty as D
from shared.models.vision import VisionConfig, build_vision_model
from shared.train import TrainConfig
from shared.train.classification import fit_classifier
from papers.example_difficulty.example_records import ExampleRecorder
from shared.data.images import ImageSet
from shared.models.output import ModelOutput


class Classifier(nn.Module):
    """A plain network behind the models' output contract: x -> ModelOutput(logits, None)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        return ModelOutput(self.net(x), None)


def test_pointwise_scores_by_hand():
    # probabilities (0.7, 0.2, 0.1) for label 0, and uniform for label 2
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1], [1 / 3, 1 / 3, 1 / 3]]))
    s = D.pointwise_scores(logits, torch.tensor([0, 2]))
    assert s["el2n"][0].item() == pytest.approx(math.sqrt(0.3 ** 2 + 0.2 ** 2 + 0.1 ** 2))
    assert s["margin"][0].item() == pytest.approx(0.5)
    assert s["margin"][1].item() == pytest.approx(0.0, abs=1e-12)
    assert s["confidence"][0].item() == pytest.approx(0.7)
    assert s["entropy"][1].item() == pytest.approx(math.log(3))
    assert s["loss"][0].item() == pytest.approx(-math.log(0.7))
    assert s["accuracy"].tolist() == [1.0, 0.0]   # a three-way tie goes to class 0, not the label 2
    # batched over checkpoints: [T, N, C]
    assert D.pointwise_scores(logits.expand(4, 2, 3), torch.tensor([0, 2]))["el2n"].shape == (4, 2)


def test_margin_is_negative_when_wrong():
    s = D.pointwise_scores(torch.log(torch.tensor([[0.1, 0.6, 0.3]])), torch.tensor([0]))
    assert s["margin"].item() == pytest.approx(0.1 - 0.6)
    assert s["accuracy"].item() == 0.0


def test_training_dynamics_by_hand():
    correct = torch.tensor([[0, 1, 1, 0],
                            [1, 1, 0, 0],
                            [0, 1, 1, 0],
                            [1, 1, 1, 0]]).bool()        # 4 evaluations x 4 examples
    assert D.forgetting_events(correct).tolist() == [1, 0, 1, 0]
    assert D.first_learned(correct).tolist() == [1, 0, 0, 4]
    assert D.learned_for_good(correct).tolist() == [3, 0, 2, 4]
    with pytest.raises(ValueError, match=r"\[T, N\]"):
        D.forgetting_events(torch.ones(3).bool())


def test_grand_matches_a_per_example_backward():
    torch.manual_seed(0)
    model = Classifier(nn.Sequential(nn.Flatten(), nn.Linear(4, 3)))
    x, y = torch.randn(5, 1, 2, 2), torch.tensor([0, 1, 2, 1, 0])
    got = D.grand_scores(model, x, y, batch_size=2)
    for i in range(5):
        model.zero_grad()
        nn.functional.cross_entropy(model(x[i:i + 1]).logits, y[i:i + 1]).backward()
        want = torch.sqrt(sum((p.grad ** 2).sum() for p in model.parameters()))
        assert got[i].item() == pytest.approx(want.item(), rel=1e-5)


def test_input_gradients_of_a_linear_model_are_its_class_rows():
    model = Classifier(nn.Sequential(nn.Flatten(), nn.Linear(4, 3, bias=False)))
    x, y = torch.randn(3, 1, 2, 2), torch.tensor([2, 0, 1])
    g = D.input_gradients(model, x, y)
    for i in range(3):
        assert torch.allclose(g[i].flatten(), model.net[1].weight[y[i]])


def test_online_vog_is_the_variance_over_checkpoints():
    rng = np.random.default_rng(0)
    grads = [torch.tensor(rng.normal(size=(4, 2, 3, 3))) for _ in range(5)]
    vog = D.OnlineVoG()
    for g in grads:
        vog.add(g)
    stacked = torch.stack([g.mean(1) for g in grads])              # channel-averaged [T, N, H, W]
    want = stacked.var(0, unbiased=True).flatten(1).mean(1)
    assert torch.allclose(vog.get(), want)
    with pytest.raises(ValueError, match="2 checkpoints"):
        D.OnlineVoG().get()


def test_prediction_depth_by_construction():
    # two clusters; layer 0 mixes them up for the "late" examples, layer 1 separates everything
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 10.0]])
    labels = np.repeat([0, 1], 20)
    clean = centres[labels] + rng.normal(0, 0.5, size=(40, 2))
    layer0 = clean.copy()
    late = np.array([0, 1, 20, 21])
    layer0[late] = centres[1 - labels[late]] + rng.normal(0, 0.5, size=(4, 2))   # sit in the other cluster
    reps = [torch.tensor(layer0), torch.tensor(clean)]
    pd = D.prediction_depth(reps, torch.tensor(labels), k=5)
    assert pd[late].tolist() == [1, 1, 1, 1]
    assert int((pd == 0).sum()) == 36


def test_knn_leave_one_out_does_not_vote_for_itself():
    feats = np.array([[0.0], [0.1], [0.2], [5.0]])
    labels = np.array([0, 0, 0, 1])
    # the isolated point's neighbours are all class 0: leave-one-out predicts 0 for it
    assert D.knn_loo_predictions(feats, labels, k=3).tolist() == [0, 0, 0, 0]


def test_recorder_as_a_trainer_callback_and_run_scores():
    torch.manual_seed(0)
    n = 48
    x = torch.randn(n, 1, 4, 4)
    y = (x.flatten(1).sum(1) > 0).long()
    data = ImageSet(x, y, ("neg", "pos"))
    model = build_vision_model(VisionConfig(arch="mlp", image_size=4, num_classes=2, hidden=(8,)))
    rec = ExampleRecorder(x, y, every=3, record_at_start=True, grand_at=(3,))
    fit_classifier(model, data, TrainConfig(max_steps=9, lr=1e-2, progress_bar=False, log_every=3), 16,
                   callbacks=[rec])
    assert rec.steps == [0, 3, 6, 9]
    assert rec.logits.shape == (4, n, 2) and rec.correct.shape == (4, n) and rec.loss.shape == (4, n)
    assert torch.allclose(rec.logits[-1], model.eval()(x).logits, atol=1e-6)
    assert rec.grand[3].shape == (n,) and rec.vog().shape == (n,)
    scores = D.run_scores(rec.logits, y, grand=rec.grand[3], vog=rec.vog(),
                          representations=D.layer_representations(model, x), pd_k=5)
    assert set(scores) == set(D.SCORE_NAMES)
    assert all(v.shape == (n,) and np.isfinite(v).all() for v in scores.values())


def test_a_recorder_with_a_store_file_resumes_like_one_in_memory(tmp_path):
    """The logits go to a file; a run resumed from its checkpoint cuts off what was recorded after it (here
    a bogus evaluation appended after the checkpoint) and ends with the uninterrupted run's records."""
    torch.manual_seed(0)
    n = 24
    x = torch.randn(n, 1, 4, 4)
    y = (x.flatten(1).sum(1) > 0).long()
    data = ImageSet(x, y, ("neg", "pos"))

    def model():
        torch.manual_seed(1)
        return build_vision_model(VisionConfig(arch="mlp", image_size=4, num_classes=2, hidden=(8,)))

    def config(steps, **files):
        return TrainConfig(max_steps=steps, lr=1e-2, schedule="constant", progress_bar=False, log_every=3, **files)

    plain = ExampleRecorder(x, y, every=3, record_at_start=True)
    fit_classifier(model(), data, config(9), 12, callbacks=[plain])
    store = tmp_path / "logits.f32"
    files = {"run_dir": str(tmp_path), "checkpoint_every": 6, "keep_last_n": 1}
    first = ExampleRecorder(x, y, every=3, record_at_start=True, store=store)
    fit_classifier(model(), data, config(6, **files), 12, callbacks=[first])
    assert store.stat().st_size == 3 * n * 2 * 4                       # steps 0, 3, 6; nothing in memory
    with open(store, "ab") as f:
        f.write(np.full((n, 2), 7.0, np.float32).tobytes())            # recorded after the checkpoint
    resumed = ExampleRecorder(x, y, every=3, record_at_start=True, store=store)
    with pytest.warns(UserWarning, match="differs in"):
        fit_classifier(model(), data, config(9, **files), 12, callbacks=[resumed])
    assert resumed.steps == [0, 3, 6, 9]
    torch.testing.assert_close(resumed.logits, plain.logits)
    with pytest.raises(ValueError, match="resume it with that store"):
        ExampleRecorder(x, y, every=3).load_state_dict(resumed.state_dict())
