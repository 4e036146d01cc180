"""papers.example_difficulty.runs and scales: the full preset's two data sets and two GraNd / EL2N epochs,
the score columns a tiny run produces, the per-data-set output layout, and the preflight of both data sets.
The smoke preset is pinned, so its runs stay the ones the committed results come from."""
import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from papers.example_difficulty import preflight, scales
from papers.example_difficulty.difficulty import SCORE_NAMES, pointwise_scores, run_scores, score_names
from papers.example_difficulty.runs import (RunsResult, TrainRunsSpec, by_dataset, output_name, read_scores,
                                            save_scores, scored_subset, scores_file, scores_files, text_by_dataset,
                                            train_runs)
from shared.data.images import ImageSet
from shared.pipelines.vision_classification import ImageDataSpec, load_image_data
from shared.preflight import World
from shared.preflight.recipes import CIFAR10_TEST, CIFAR100_TEST

TRAIN_RUNS = scales.NOTEBOOKS["01_train_runs"]

# the smoke preset the committed runs (runs/smoke/example_difficulty) were made with
SMOKE_TRAIN_RUNS = {
    "data": {"name": "digits", "test_fraction": 0.3, "split_seed": 0}, "score_examples": None,
    "train": {"global_batch_size": 64, "optimizer": "adamw", "lr": 3e-3, "weight_decay": 5e-4, "augment": None},
    "evals_per_epoch": 2, "grand_epoch": 1, "pd_k": 15, "threads": 1, "runs_per_arch": 8, "epochs": 12,
    "archs": {"mlp": {"arch": "mlp", "hidden": [64]},
              "lenet": {"arch": "lenet", "channels": [8, 16], "hidden": [32]},
              "resnet": {"arch": "resnet", "width": 8, "blocks": 1}}}


def tiny_spec(**fields) -> TrainRunsSpec:
    """Digits, one run of a small MLP for 2 epochs, one recorded evaluation per epoch."""
    return TrainRunsSpec.from_dict({
        "data": {"name": "digits", "test_fraction": 0.3}, "score_examples": 40, "runs_per_arch": 1, "epochs": 2,
        "evals_per_epoch": 1, "pd_k": 5, "train": {"global_batch_size": 128, "optimizer": "adamw", "lr": 3e-3},
        "archs": {"mlp": {"arch": "mlp", "hidden": [8]}}, **fields})


def test_full_preset_trains_both_data_sets_and_takes_both_epochs():
    spec = TRAIN_RUNS.build("full")
    assert spec.dataset_names == ("cifar10", "cifar100")
    assert [d.name for d in spec.data_specs()] == ["cifar10", "cifar100"]
    assert all(d.test_fraction is None for d in spec.data_specs())
    assert spec.grand_epochs == (10, 20) and spec.el2n_epochs == (10, 20)
    assert score_names(spec.grand_epochs, spec.el2n_epochs) == SCORE_NAMES + ("grand_ep20", "el2n_ep20")


def test_smoke_preset_is_unchanged():
    assert TRAIN_RUNS.resolve("smoke") == SMOKE_TRAIN_RUNS
    spec = TRAIN_RUNS.build("smoke")
    assert spec.data_specs() == [spec.data]
    assert spec.dataset_names == ("digits",) and spec.grand_epochs == (1,) and spec.el2n_epochs == ()
    assert score_names(spec.grand_epochs, spec.el2n_epochs) == SCORE_NAMES
    assert TRAIN_RUNS.build("small").dataset_names == ("digits",)


@pytest.mark.parametrize("fields, message", [
    ({"datasets": ["cifar100", "digits"]}, "must be the first of datasets"),
    ({"datasets": ["digits", "digits"]}, "distinct data sets"),
    ({"datasets": ["digits", "imagenet"]}, "not valid"),
    ({"grand_epoch": [2, 1]}, "ascending"),
    ({"grand_epoch": []}, "at least one epoch"),
    ({"el2n_epoch": [1, 3]}, r"in \[1, epochs=2\]"),
])
def test_spec_refuses_bad_data_sets_and_epochs(fields, message):
    with pytest.raises(ValueError, match=message):
        tiny_spec(**fields)


def test_a_tiny_run_writes_a_column_per_later_epoch_and_keeps_the_first_epochs_columns():
    train_set, test_set = load_image_data(ImageDataSpec(name="digits", test_fraction=0.3))
    scored = scored_subset(train_set, 40)
    two = train_runs(tiny_spec(grand_epoch=[1, 2], el2n_epoch=[1, 2]), train_set, test_set, scored)
    one = train_runs(tiny_spec(grand_epoch=1, el2n_epoch=1), train_set, test_set, scored)
    assert list(two.scores) == list(SCORE_NAMES) + ["grand_ep2", "el2n_ep2"]
    assert list(one.scores) == list(SCORE_NAMES)
    assert all(v.shape == (1, 40) and np.isfinite(v).all() for v in two.scores.values())
    for name in SCORE_NAMES:    # the later epoch adds columns and changes nothing else
        np.testing.assert_array_equal(two.scores[name], one.scores[name], err_msg=name)
    assert not np.allclose(two.scores["grand_ep2"], two.scores["grand"])
    assert not np.allclose(two.scores["el2n_ep2"], two.scores["el2n"])
    assert two.evaluations_per_run == 2


def test_el2n_epochs_must_end_on_a_recorded_evaluation():
    train_set, test_set = load_image_data(ImageDataSpec(name="digits", test_fraction=0.3))
    spec = tiny_spec(evals_per_epoch=2, el2n_epoch=[1, 2])      # 9 steps per epoch, an evaluation every 4
    with pytest.raises(ValueError, match="not a recorded evaluation"):
        train_runs(spec, train_set, test_set, scored_subset(train_set, 40))


def test_run_scores_takes_el2n_at_each_epochs_evaluation():
    torch.manual_seed(0)
    logits, labels = torch.randn(3, 5, 4), torch.tensor([0, 1, 2, 3, 0])
    el2n = pointwise_scores(logits, labels)["el2n"]
    out = run_scores(logits, labels, grand={2: torch.ones(5), 3: torch.full((5,), 2.0)}, el2n_at={2: 1, 3: 2})
    np.testing.assert_allclose(out["el2n"], el2n[1].numpy())
    np.testing.assert_allclose(out["el2n_ep3"], el2n[2].numpy())
    assert out["grand"].tolist() == [1.0] * 5 and out["grand_ep3"].tolist() == [2.0] * 5
    # one epoch as a plain value is the same as a one-entry mapping
    np.testing.assert_array_equal(run_scores(logits, labels, el2n_at=1)["el2n"], out["el2n"])


def fake_result(n_runs: int, n_examples: int, extra: tuple[str, ...] = ()) -> RunsResult:
    rng = np.random.default_rng(0)
    names = list(SCORE_NAMES) + list(extra)
    return RunsResult({n: rng.normal(size=(n_runs, n_examples)) for n in names},
                      pd.DataFrame({"arch": ["mlp", "vgg"][:n_runs]}), 3)


def test_one_data_set_keeps_the_plain_names_several_get_theirs(tmp_path):
    assert output_name("runs", "digits", ["digits"]) == "runs"
    assert output_name("runs", "cifar100", ["cifar10", "cifar100"]) == "runs_cifar100"
    assert by_dataset({"digits": 3}) == 3 and by_dataset({"a": 1, "b": 2}) == {"a": 1, "b": 2}
    assert text_by_dataset({"digits": "x"}) == "x" and text_by_dataset({"a": "x", "b": "y"}) == "a: x; b: y"

    scored = ImageSet(torch.zeros(4, 1, 2, 2), torch.tensor([0, 1, 0, 1]), ("a", "b"))
    one = tmp_path / "one"
    one.mkdir()
    save_scores(scores_file(one, "digits", ["digits"]), fake_result(2, 4), scored, with_images=True)
    assert scores_files(one) == {"": one / "scores.npz"}

    several = tmp_path / "several"
    several.mkdir()
    for name in ("cifar10", "cifar100"):
        save_scores(scores_file(several, name, ["cifar10", "cifar100"]), fake_result(2, 4, ("grand_ep20", "el2n_ep20")),
                    scored, with_images=False)
    files = scores_files(several)
    assert list(files) == ["cifar10", "cifar100"] and files["cifar100"].name == "scores_cifar100.npz"
    read = read_scores(files["cifar100"])
    assert list(read.scores) == list(SCORE_NAMES) + ["grand_ep20", "el2n_ep20"]
    assert read.archs == ["mlp", "vgg"] and read.images.size == 0 and read.labels.tolist() == [0, 1, 0, 1]
    with pytest.raises(FileNotFoundError, match="01_train_runs"):
        scores_files(tmp_path)


def test_preflight_sizes_and_requires_both_data_sets():
    full = TRAIN_RUNS.build("full")
    spec = dataclasses.replace(full, archs={"mlp": full.archs["mlp"], "resnet20_w8": full.archs["resnet20_w8"]})
    plans = preflight.plan("01_train_runs", spec, World(1, 1))
    assert [p.name for p in plans] == ["cifar10/mlp", "cifar10/resnet20_w8", "cifar100/mlp", "cifar100/resnet20_w8"]
    # CIFAR-100's 100 classes widen the last layer: each data set's own model is sized
    assert plans[2].model.params > plans[0].model.params
    assert [r.path for r in preflight.requirements("01_train_runs", spec)] == [CIFAR10_TEST, CIFAR100_TEST]
    smoke = TRAIN_RUNS.build("smoke")
    assert [p.name for p in preflight.plan("01_train_runs", smoke, World(1, 1))] == ["mlp", "lenet", "resnet"]
    assert preflight.requirements("01_train_runs", smoke) == []
