"""shared.train.pruning: global magnitude pruning, masks kept through training, IMP with rewinding;
papers.prunability.imp.prunability."""
import pytest
import torch
from torch import nn

from papers.prunability.imp import prunability
from shared.data.images import ImageSet
from shared.models.vision import VisionConfig, build_vision_model
from shared.train import TrainConfig
from shared.train.classification import fit_classifier, sgd_factory
from shared.train.pruning import (MaskKeeper, apply_masks, full_masks, global_magnitude_prune, prunable_parameters,
                                  run_imp, sparsity)


def _tiny():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


def test_prunable_parameters_are_weights_only():
    model = _tiny()
    assert list(prunable_parameters(model)) == ["0.weight", "2.weight"]
    assert list(prunable_parameters(model, include_head=False)) == ["0.weight"]


def test_global_magnitude_prune_removes_the_smallest_across_layers():
    model = _tiny()
    with torch.no_grad():
        model[0].weight.copy_(torch.arange(1, 13, dtype=torch.float32).reshape(4, 3))   # |w| 1..12
        model[2].weight.copy_(torch.tensor([[0.5, 20.0, 21.0, 22.0], [23.0, 24.0, 25.0, 26.0]]))
    masks = global_magnitude_prune(model, full_masks(model), 0.25)     # 20 weights -> drop 5
    assert sparsity(masks) == pytest.approx(5 / 20)
    assert masks["2.weight"][0, 0].item() is False                      # 0.5 is the smallest overall
    assert masks["0.weight"].flatten()[:4].tolist() == [False] * 4      # then 1, 2, 3, 4
    # pruning again removes 25% of the remaining 15, never reviving the pruned
    apply_masks(model, masks)
    again = global_magnitude_prune(model, masks, 0.2)
    assert sparsity(again) == pytest.approx(8 / 20)
    assert not (again["0.weight"] & ~masks["0.weight"]).any()
    with pytest.raises(ValueError, match="fraction"):
        global_magnitude_prune(model, masks, 1.0)


def _data(n=64):
    torch.manual_seed(1)
    x = torch.randn(n, 1, 4, 4)
    return ImageSet(x, (x[:, 0, 0, 0] > 0).long(), ("a", "b"))


def test_masks_are_kept_through_training_with_adamw_weight_decay():
    data = _data()
    model = build_vision_model(VisionConfig(arch="mlp", image_size=4, num_classes=2, hidden=(16,)))
    masks = global_magnitude_prune(model, full_masks(model), 0.6)
    keeper = MaskKeeper(model, masks)
    fit_classifier(model, data, TrainConfig(max_steps=20, lr=1e-2, weight_decay=0.1, progress_bar=False), 16,
                   callbacks=[keeper])
    for name, p in prunable_parameters(model).items():
        assert (p[~masks[name]] == 0).all()
        assert (p[masks[name]] != 0).any()
    keeper.remove()


def test_imp_rewinds_to_the_snapshot_and_reaches_the_planned_sparsity():
    data = _data()
    model = build_vision_model(VisionConfig(arch="mlp", image_size=4, num_classes=2, hidden=(16,)))
    init = {k: v.clone() for k, v in model.state_dict().items()}
    starts = []

    def train(m, masks, callbacks):
        starts.append({k: v.clone() for k, v in m.state_dict().items()})
        fit_classifier(m, data, TrainConfig(max_steps=6, lr=1e-2, progress_bar=False), 16, callbacks=callbacks)
        return {"nonzero": sum(int((p != 0).sum()) for p in prunable_parameters(m).values())}

    result = run_imp(model, train, levels=3, fraction=0.5, rewind_step=0)
    assert result.sparsity == pytest.approx([0.0, 0.5, 0.75, 0.875])
    total = sum(p.numel() for p in prunable_parameters(model).values())
    assert [r["nonzero"] for r in result.metrics][1:] == [round(total * (1 - s)) for s in result.sparsity[1:]]
    # every retraining starts from the initial weights with the pruned ones zeroed
    for start in starts[1:]:
        for k, v in start.items():
            assert torch.equal(v[v != 0], init[k][v != 0])


def test_rewinding_to_a_later_step_uses_that_steps_weights():
    data = _data()
    model = build_vision_model(VisionConfig(arch="mlp", image_size=4, num_classes=2, hidden=(8,)))
    init = {k: v.clone() for k, v in model.state_dict().items()}
    starts = []

    def train(m, masks, callbacks):
        starts.append({k: v.clone() for k, v in m.state_dict().items()})
        fit_classifier(m, data, TrainConfig(max_steps=5, lr=1e-2, progress_bar=False), 16, callbacks=callbacks)
        return {}

    run_imp(model, train, levels=1, fraction=0.3, rewind_step=2)
    kept = starts[1]["layers.0.weight"] != 0
    assert not torch.equal(starts[1]["layers.0.weight"][kept], init["layers.0.weight"][kept])
    with pytest.raises(ValueError, match="rewind_step"):
        run_imp(build_vision_model(VisionConfig(arch="mlp", image_size=4, num_classes=2, hidden=(8,))),
                train, levels=1, rewind_step=50)


def test_prunability_is_the_largest_sparsity_within_tolerance():
    sp = [0.0, 0.2, 0.36, 0.49, 0.59]
    acc = [0.90, 0.91, 0.895, 0.87, 0.80]
    assert prunability(sp, acc, dense_accuracy=0.90, tolerance=0.01) == 0.36
    assert prunability(sp, acc, dense_accuracy=0.90, tolerance=0.05) == 0.49
    assert prunability(sp, [0.5] * 5, dense_accuracy=0.9, tolerance=0.01) == 0.0


def test_continuing_from_the_rewind_step_replays_the_dense_run():
    """continue_from_rewind (Frankle et al. 2020 / open_lth): a level resumes at the rewind step with that
    step's LR and batch order and a fresh optimizer. With nothing pruned and plain SGD (no optimizer state),
    the level retrains exactly the dense run's last steps, so it ends at the dense run's weights; restarting
    the whole schedule instead does not."""
    data = _data()
    config = TrainConfig(max_steps=8, lr=5e-2, schedule="cosine", progress_bar=False)
    ends = {}
    for continued in (True, False):
        torch.manual_seed(0)
        model = build_vision_model(VisionConfig(arch="mlp", image_size=4, num_classes=2, hidden=(8,)))
        finals = []

        def train(m, masks, callbacks):
            fit_classifier(m, data, config, 16, callbacks=callbacks, optimizer_factory=sgd_factory(momentum=0.0))
            finals.append({k: v.clone() for k, v in m.state_dict().items()})
            return {}

        run_imp(model, train, levels=1, fraction=0.0, rewind_step=3, continue_from_rewind=continued)
        ends[continued] = finals
    dense, level = ends[True]
    assert all(torch.allclose(dense[k], level[k], atol=1e-6) for k in dense)
    dense, restarted = ends[False]
    assert not all(torch.allclose(dense[k], restarted[k], atol=1e-6) for k in dense)
