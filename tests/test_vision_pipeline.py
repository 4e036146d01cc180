"""shared.pipelines.vision_classification: typed specs refuse bad values, models come from a flavour
or VisionConfig fields shaped by the data, and training, IMP and distillation run through the
shared trainer."""
import pytest
import torch

from shared.data.images import ImageSet
from shared.pipelines.vision_classification import (ClassifierTrainSpec, DistillationSpec, ImageDataSpec, ImpSpec,
                                                    KDSchedule, build_classifier, check_model_spec, distillation_loss,
                                                    load_image_data, train_classifier, train_with_imp, vision_config)
from shared.utils.config import from_dict


def _data(n=64, channels=1, side=4, classes=2):
    torch.manual_seed(1)
    x = torch.randn(n, channels, side, side)
    return ImageSet(x, (x[:, 0, 0, 0] > 0).long() % classes, tuple(str(c) for c in range(classes)))


def test_specs_build_from_plain_dicts_and_refuse_bad_values():
    spec = ClassifierTrainSpec.from_dict({"max_steps": 5, "global_batch_size": 8, "optimizer": "sgd",
                                          "augment": {"pad": 2, "flip": False}})
    assert spec.augment.pad == 2 and spec.optimizer_factory() is not None
    assert ClassifierTrainSpec().optimizer_factory() is None
    config = spec.train_config(seed=3)
    assert (config.max_steps, config.seed, config.grad_clip, config.log_every) == (5, 3, None, 5)
    with pytest.raises(ValueError, match="optimizer"):
        ClassifierTrainSpec(optimizer="rmsprop")
    with pytest.raises(ValueError, match="max_steps"):
        ClassifierTrainSpec().train_config()
    with pytest.raises(ValueError, match="unknown"):
        ClassifierTrainSpec.from_dict({"batch_size": 8})
    with pytest.raises(ValueError, match="dataset"):
        ImageDataSpec(name="mnist")
    with pytest.raises(ValueError, match="test_fraction"):
        ImageDataSpec(name="digits", test_fraction=None)
    with pytest.raises(ValueError, match="fraction"):
        ImpSpec(fraction=1.0)
    assert from_dict(KDSchedule, {"stop_fraction": 0.2, "every": 1}).teacher_fraction(10) == pytest.approx(0.2)


def test_digits_split_and_normalized():
    train, test = load_image_data(ImageDataSpec(name="digits", test_fraction=0.3))
    assert len(train) + len(test) == 1797 and train.shape == (1, 8, 8)
    assert abs(float(train.x.mean())) < 1e-4
    with pytest.raises(ValueError, match="data_dir"):
        load_image_data(ImageDataSpec(name="cifar10", test_fraction=None))


def test_models_from_a_flavour_or_fields_take_the_datas_shape():
    gray = _data(channels=1, side=32, classes=10)
    cfg = vision_config("cifar-resnet-20", gray)
    assert (cfg.arch, cfg.in_channels, cfg.image_size, cfg.num_classes, cfg.width) == ("resnet", 1, 32, 10, 16)
    model = build_classifier({"arch": "mlp", "hidden": [8]}, _data())
    assert model(torch.zeros(3, 1, 4, 4)).logits.shape == (3, 2)
    with pytest.raises(ValueError, match="come from the data"):
        check_model_spec({"arch": "mlp", "num_classes": 3})
    with pytest.raises(ValueError, match="not a vision"):
        check_model_spec("mpt-7b")
    with pytest.raises(ValueError, match="unknown"):
        check_model_spec({"arch": "mlp", "depth": 3})


def test_training_imp_and_distillation_run_through_the_trainer():
    data = _data()
    spec = ClassifierTrainSpec(max_steps=6, global_batch_size=16, lr=1e-2)
    torch.manual_seed(0)
    model = build_classifier({"arch": "mlp", "hidden": [8]}, data)
    trainer = train_classifier(model, data, spec, seed=0, eval_sets={"test": data})
    assert trainer.step == 6 and 0.0 <= trainer.history.final("test/acc") <= 1.0
    imp = train_with_imp(model, data, data, spec, ImpSpec(fraction=0.5, levels=2), seed=0)
    assert imp.sparsity == pytest.approx([0.0, 0.5, 0.75])
    assert all("test_acc" in m for m in imp.metrics)
    loss = distillation_loss([model], 4, DistillationSpec(temperature=2.0, alpha=0.5), KDSchedule(every=2))
    student = build_classifier({"arch": "mlp", "hidden": [8]}, data)
    train_classifier(student, data, spec, seed=1, max_steps=4, loss_fn=loss)
    assert loss.teacher_forward_examples == 2 * 16


def test_a_classifier_with_a_run_dir_checkpoints_and_a_rerun_resumes(tmp_path):
    data = _data()
    spec = ClassifierTrainSpec(max_steps=10, global_batch_size=16, lr=1e-2, schedule="constant")
    arch = {"arch": "mlp", "hidden": [8]}
    torch.manual_seed(0)
    plain = build_classifier(arch, data)
    train_classifier(plain, data, spec, seed=3)
    torch.manual_seed(0)
    filed = build_classifier(arch, data)
    train_classifier(filed, data, spec, seed=3, max_steps=6, run_dir=tmp_path, checkpoint_every=3)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_00000006"]   # every 3, latest kept
    # a run resumed at step 6 of 10 (a fresh model, the same folder) ends where the uninterrupted run ends
    torch.manual_seed(1)
    resumed = build_classifier(arch, data)
    with pytest.warns(UserWarning, match="differs in \\['max_steps'\\]"):
        trainer = train_classifier(resumed, data, spec, seed=3, run_dir=tmp_path, checkpoint_every=3)
    assert trainer.step == 10
    for a, b in zip(plain.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b)
