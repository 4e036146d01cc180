"""shared.data.images and papers.prunability.manifolds: loaders, the CIFAR-10 binary reader (on a small
file written here), splits, augmentation, controlled-dimension data and dimension estimators."""
import numpy as np
import pytest
import torch

from papers.prunability.manifolds import (ManifoldConfig, explained_variance, manifold_classification,
                                          mle_dimension, pca_project, twonn_dimension)
from shared.data.images import (AugmentedBatches, generated_shapes, load_cifar10, load_digits, normalize,
                                read_cifar10_binary, stratified_split)
from shared.train.data import ResumableBatches


def _write_cifar(path, labels, seed=0):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(len(labels), 3072), dtype=np.uint8)
    np.concatenate([np.array(labels, dtype=np.uint8)[:, None], pixels], axis=1).tofile(path)
    return pixels


def test_cifar10_binary_reader_layout(tmp_path):
    pixels = _write_cifar(tmp_path / "b.bin", [3, 9, 0])
    x, y = read_cifar10_binary(tmp_path / "b.bin")
    assert x.shape == (3, 3, 32, 32) and y.tolist() == [3, 9, 0]
    # 1024 red bytes, then green, then blue; each row-major 32x32
    assert x[1, 0, 0, 5] == pixels[1, 5] and x[1, 1, 2, 3] == pixels[1, 1024 + 2 * 32 + 3]
    assert x[2, 2, 31, 31] == pixels[2, 3071]


def test_cifar10_loader_reads_a_folder(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    for i in range(1, 6):
        _write_cifar(folder / f"data_batch_{i}.bin", [i % 10, 1], seed=i)
    _write_cifar(folder / "test_batch.bin", [7])
    train, test = load_cifar10(tmp_path, "train"), load_cifar10(tmp_path, "test")
    assert len(train) == 10 and len(test) == 1 and test.y.tolist() == [7]
    assert 0.0 <= float(train.x.min()) and float(train.x.max()) <= 1.0
    with pytest.raises(FileNotFoundError, match="test_batch.bin"):
        load_cifar10(tmp_path / "nowhere")


def test_cifar10_reader_rejects_a_wrong_file(tmp_path):
    (tmp_path / "bad.bin").write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="records"):
        read_cifar10_binary(tmp_path / "bad.bin")


def test_digits_split_and_normalize():
    d = load_digits()
    assert d.x.shape == (1797, 1, 8, 8) and d.num_classes == 10
    train, test = stratified_split(d, 0.3, seed=1)
    assert len(train) + len(test) == 1797 and not set(train.indices.tolist()) & set(test.indices.tolist())
    assert abs(float((test.y == 3).float().mean()) - float((d.y == 3).float().mean())) < 0.01
    ntr, nte = normalize(train, test)
    assert abs(float(ntr.x.mean())) < 1e-5 and abs(float(ntr.x.std()) - 1) < 1e-3
    assert torch.equal(ntr.indices, train.indices)


def test_generated_shapes_are_seeded():
    a, b = generated_shapes(20, 12, seed=3), generated_shapes(20, 12, seed=3)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and a.x.shape == (20, 1, 12, 12)
    assert not torch.equal(a.x, generated_shapes(20, 12, seed=4).x)
    with pytest.raises(ValueError, match="unknown shapes"):
        generated_shapes(5, classes=("hexagon",))


def test_augmentation_shifts_within_the_pad_and_resumes():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4)
    data = {"x": x, "y": torch.tensor([0, 1])}
    aug = AugmentedBatches(ResumableBatches(data, 2, seed=0), pad=1, flip=False, seed=5)
    for _ in range(5):
        out = next(aug)["x"]
        for img in out:  # every output is a shifted copy of one of the inputs (zero-filled border)
            assert any(_is_shift(img[0], src[0], 1) for src in x)
    state = aug.state_dict()
    nxt = next(aug)["x"]
    aug2 = AugmentedBatches(ResumableBatches(data, 2, seed=0), pad=1, flip=False, seed=5)
    aug2.load_state_dict(state)
    assert torch.equal(next(aug2)["x"], nxt)


def _is_shift(img, src, pad):
    h, w = src.shape
    padded = torch.nn.functional.pad(src, (pad,) * 4)
    return any(torch.equal(img, padded[dy:dy + h, dx:dx + w]) for dy in range(2 * pad + 1) for dx in range(2 * pad + 1))


def test_manifold_data_has_the_intrinsic_dimension_asked_for():
    estimates = []
    for k in (2, 4, 8):
        data = manifold_classification(1500, ManifoldConfig(intrinsic_dim=k, ambient_dim=64, num_classes=3), seed=0)
        assert data.x.shape == (1500, 1, 8, 8)
        estimates.append(twonn_dimension(data.x.flatten(1).numpy()))
    assert estimates[0] < estimates[1] < estimates[2]
    assert abs(estimates[0] - 2) < 0.7 and abs(estimates[1] - 4) < 1.5


def test_label_rule_does_not_depend_on_the_nuisance_dimensions():
    a = manifold_classification(500, ManifoldConfig(intrinsic_dim=3, label_dims=2, num_classes=4), seed=1)
    b = manifold_classification(500, ManifoldConfig(intrinsic_dim=6, label_dims=2, num_classes=4), seed=1)
    assert len(torch.unique(a.y)) == 4
    for d in (a, b):   # evenly spaced class directions in the label plane: balanced classes
        assert float(torch.bincount(d.y, minlength=4).min()) > 0.15 * len(d)
    # the rule reads only the first two latent coordinates, which both sets draw the same way
    assert torch.equal(a.y, b.y)
    with pytest.raises(ValueError, match="intrinsic_dim"):
        ManifoldConfig(intrinsic_dim=100, ambient_dim=64)


def test_estimators_on_a_flat_cube():
    rng = np.random.default_rng(0)
    cube = np.concatenate([rng.uniform(size=(2000, 5)), np.zeros((2000, 20))], axis=1)
    assert abs(twonn_dimension(cube) - 5) < 1.0
    assert abs(mle_dimension(cube, k=10) - 5) < 1.0


def test_pca_projection_keeps_the_shape_and_has_rank_k():
    d = load_digits()
    train, test = stratified_split(d, 0.2)
    ptrain, ptest = pca_project(train, test, k=5)
    assert ptrain.x.shape == train.x.shape and ptest.x.shape == test.x.shape
    sv = torch.linalg.svdvals((ptrain.x.flatten(1) - ptrain.x.flatten(1).mean(0)).double())
    assert sv[4] / sv[0] > 1e-2 and sv[5] / sv[0] < 1e-4   # rank 5 up to float32 rounding
    full = pca_project(train, k=64)[0]
    assert torch.allclose(full.x, train.x, atol=1e-5)
    assert 0 < explained_variance(train, 5) < explained_variance(train, 20) <= 1.0


def test_cifar100_binary_reader_keeps_the_fine_label(tmp_path):
    from shared.data.images import load_cifar100, read_cifar100_binary
    from shared.pipelines.vision_classification import ImageDataSpec, load_image_data
    folder = tmp_path / "cifar-100-binary"
    folder.mkdir()
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(3, 3072), dtype=np.uint8)
    labels = np.array([[4, 72], [19, 99], [0, 3]], dtype=np.uint8)          # (coarse, fine)
    np.concatenate([labels, pixels], axis=1).tofile(folder / "train.bin")
    np.concatenate([labels[:1], pixels[:1]], axis=1).tofile(folder / "test.bin")
    x, y = read_cifar100_binary(folder / "train.bin")
    assert y.tolist() == [72, 99, 3] and x[1, 1, 2, 3] == pixels[1, 1024 + 2 * 32 + 3]
    train = load_cifar100(tmp_path, "train")
    assert len(train.classes) == 100 and train.y.tolist() == [72, 99, 3] and float(train.x.max()) <= 1.0
    (folder / "fine_label_names.txt").write_text("\n".join(f"name{i}" for i in range(100)) + "\n")
    assert load_cifar100(tmp_path, "test").classes[72] == "name72"
    tr, te = load_image_data(ImageDataSpec(name="cifar100", test_fraction=None, normalize=False), tmp_path)
    assert len(tr) == 3 and len(te) == 1
    labels[1, 0] = 20                                                         # coarse labels stop at 19
    np.concatenate([labels, pixels], axis=1).tofile(tmp_path / "bad.bin")
    with pytest.raises(ValueError, match="not a CIFAR-100 binary file"):
        read_cifar100_binary(tmp_path / "bad.bin")
    with pytest.raises(FileNotFoundError, match="CIFAR-100 binary"):
        load_cifar100(tmp_path / "nowhere")
