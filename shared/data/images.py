"""Small image classification sets: scikit-learn's digits, seeded generated shapes, CIFAR-10 and CIFAR-100
from their binary files.

Every loader returns an `ImageSet`: images x float32 [N, C, H, W] and labels y int64 [N], with the
example index kept so that per-example records can be traced back (`ImageSet.indices`).

CIFAR-10 is read from the "binary version" (cifar-10-batches-bin/data_batch_{1..5}.bin,
test_batch.bin): each record is 1 label byte followed by 3072 pixel bytes, 1024 red, 1024 green,
1024 blue, each channel row-major 32x32 (https://www.cs.toronto.edu/~kriz/cifar.html). CIFAR-100's
binary version (cifar-100-binary/train.bin, test.bin) has 2 label bytes per record, the coarse (20
superclasses) then the fine label (100 classes), before the same 3072 pixel bytes; we use the fine label,
and the class names of fine_label_names.txt when it is there. No pickles are read.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
import numpy as np
import torch

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_RECORD = 1 + 3 * 32 * 32
SHAPES = ("disk", "square", "triangle", "cross", "ring", "bar")


@dataclass
class ImageSet:
    """Images x [N, C, H, W] float32, labels y [N] int64, class names; `indices` [N] int64 are the
    examples' positions in the set they were drawn from (kept through subsets and splits)."""

    x: torch.Tensor
    y: torch.Tensor
    classes: tuple[str, ...]
    indices: torch.Tensor | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if self.x.ndim != 4:
            raise ValueError(f"x must be [N, C, H, W]; got shape {tuple(self.x.shape)}")
        if self.y.shape != (self.x.shape[0],):
            raise ValueError(f"y must be [N={self.x.shape[0]}]; got shape {tuple(self.y.shape)}")
        if self.indices is None:
            self.indices = torch.arange(len(self.y))

    def __len__(self) -> int:
        return len(self.y)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.x.shape[1:])

    def subset(self, idx) -> ImageSet:
        idx = torch.as_tensor(idx, dtype=torch.long)
        return ImageSet(self.x[idx], self.y[idx], self.classes, self.indices[idx], self.name)

    def with_x(self, x: torch.Tensor) -> ImageSet:
        return ImageSet(x, self.y, self.classes, self.indices, self.name)


def stratified_split(data: ImageSet, test_fraction: float, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """(train, test) with the same class proportions; deterministic given `seed`."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    y = data.y.numpy()
    test = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        test.extend(idx[: int(round(test_fraction * len(idx)))].tolist())
    test = np.sort(np.array(test, dtype=np.int64))
    train = np.setdiff1d(np.arange(len(y)), test)
    return data.subset(train), data.subset(test)


def normalize(train: ImageSet, *others: ImageSet) -> list[ImageSet]:
    """Standardize every set with the train set's per-channel mean and std."""
    mean = train.x.mean(dim=(0, 2, 3), keepdim=True)
    std = train.x.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    return [s.with_x((s.x - mean) / std) for s in (train, *others)]


def load_digits() -> ImageSet:
    """scikit-learn's bundled digits: 1,797 8x8 grayscale images of 10 digits, scaled to [0, 1]."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    return ImageSet(x, torch.tensor(d.target, dtype=torch.long), tuple(str(i) for i in range(10)), name="digits")


def generated_shapes(n: int, image_size: int = 16, classes: tuple[str, ...] = SHAPES[:4], noise: float = 0.1,
                     seed: int = 0) -> ImageSet:
    """`n` grayscale images [n, 1, S, S] of shapes with random centre, size, contrast and pixel noise.

    Classes are drawn uniformly. Deterministic given `seed`. Shapes: disk, square, triangle, cross,
    ring, bar (horizontal or vertical).
    """
    unknown = sorted(set(classes) - set(SHAPES))
    if unknown:
        raise ValueError(f"unknown shapes {unknown}; choose from {list(SHAPES)}")
    if image_size < 8:
        raise ValueError(f"image_size must be >= 8, got {image_size}")
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:image_size, 0:image_size].astype(np.float32) + 0.5
    labels = rng.integers(0, len(classes), size=n)
    images = np.empty((n, image_size, image_size), dtype=np.float32)
    for i, c in enumerate(labels):
        r = rng.uniform(0.18, 0.32) * image_size
        cy, cx = rng.uniform(r + 0.5, image_size - r - 0.5, size=2)
        dy, dx = yy - cy, xx - cx
        shape = classes[c]
        if shape == "disk":
            m = dy ** 2 + dx ** 2 <= r ** 2
        elif shape == "square":
            m = (np.abs(dy) <= r * 0.85) & (np.abs(dx) <= r * 0.85)
        elif shape == "triangle":
            m = (dy <= r * 0.8) & (dy >= -r) & (np.abs(dx) <= (dy + r) * 0.6)
        elif shape == "cross":
            w = r * 0.3
            m = ((np.abs(dy) <= w) & (np.abs(dx) <= r)) | ((np.abs(dx) <= w) & (np.abs(dy) <= r))
        elif shape == "ring":
            d2 = dy ** 2 + dx ** 2
            m = (d2 <= r ** 2) & (d2 >= (0.55 * r) ** 2)
        else:  # bar
            long_, short = (dy, dx) if rng.random() < 0.5 else (dx, dy)
            m = (np.abs(long_) <= r) & (np.abs(short) <= r * 0.3)
        images[i] = rng.uniform(0.6, 1.0) * m + rng.normal(0.0, noise, size=m.shape)
    x = torch.tensor(images).unsqueeze(1)
    return ImageSet(x, torch.tensor(labels, dtype=torch.long), tuple(classes), name="shapes")


# ---- CIFAR-10, binary version --------------------------------------------------------------------

def read_cifar10_binary(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 [N, 3, 32, 32] and labels uint8 [N] of one CIFAR-10 binary batch file."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % CIFAR10_RECORD:
        raise ValueError(f"{path}: {raw.size} bytes is not a whole number of {CIFAR10_RECORD}-byte CIFAR-10 records")
    records = raw.reshape(-1, CIFAR10_RECORD)
    labels = records[:, 0].copy()
    if labels.max() > 9:
        raise ValueError(f"{path}: label byte {labels.max()} > 9; not a CIFAR-10 binary file")
    return records[:, 1:].reshape(-1, 3, 32, 32).copy(), labels


def _cifar_dir(data_dir: str | Path) -> Path:
    root = Path(data_dir)
    for candidate in (root, root / "cifar-10-batches-bin", root / "cifar10" / "cifar-10-batches-bin"):
        if (candidate / "test_batch.bin").exists():
            return candidate
    raise FileNotFoundError(f"no CIFAR-10 binary files (test_batch.bin) under {root} or {root}/cifar-10-batches-bin; "
                            "download the 'CIFAR-10 binary version' and extract it there")


def load_cifar10(data_dir: str | Path, split: str = "train") -> ImageSet:
    """CIFAR-10 `split` ('train': data_batch_1..5, 'test': test_batch) as floats in [0, 1]."""
    if split not in ("train", "test"):
        raise ValueError(f"split={split!r} is not valid; choose one of ['train', 'test']")
    folder = _cifar_dir(data_dir)
    files = [folder / f"data_batch_{i}.bin" for i in range(1, 6)] if split == "train" else [folder / "test_batch.bin"]
    parts = [read_cifar10_binary(f) for f in files]
    x = torch.from_numpy(np.concatenate([p[0] for p in parts])).float() / 255.0
    y = torch.from_numpy(np.concatenate([p[1] for p in parts]).astype(np.int64))
    return ImageSet(x, y, CIFAR10_CLASSES, name=f"cifar10-{split}")


# ---- CIFAR-100, binary version -------------------------------------------------------------------
CIFAR100_RECORD = 2 + 3 * 32 * 32


def read_cifar100_binary(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 [N, 3, 32, 32] and fine labels uint8 [N] (0..99) of one CIFAR-100 binary file."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % CIFAR100_RECORD:
        raise ValueError(f"{path}: {raw.size} bytes is not a whole number of {CIFAR100_RECORD}-byte CIFAR-100 records")
    records = raw.reshape(-1, CIFAR100_RECORD)
    coarse, fine = records[:, 0], records[:, 1].copy()
    if coarse.max() > 19 or fine.max() > 99:
        raise ValueError(f"{path}: label bytes up to {coarse.max()} / {fine.max()} (coarse <= 19, fine <= 99); "
                         "not a CIFAR-100 binary file")
    return records[:, 2:].reshape(-1, 3, 32, 32).copy(), fine


def load_cifar100(data_dir: str | Path, split: str = "train") -> ImageSet:
    """CIFAR-100 `split` ('train': train.bin, 'test': test.bin) with its 100 fine labels, floats in [0, 1]."""
    if split not in ("train", "test"):
        raise ValueError(f"split={split!r} is not valid; choose one of ['train', 'test']")
    root = Path(data_dir)
    folder = next((c for c in (root, root / "cifar-100-binary", root / "cifar100" / "cifar-100-binary")
                   if (c / "test.bin").exists()), None)
    if folder is None:
        raise FileNotFoundError(f"no CIFAR-100 binary files (test.bin) under {root} or {root}/cifar-100-binary; "
                                "download the 'CIFAR-100 binary version' and extract it there")
    images, labels = read_cifar100_binary(folder / f"{split}.bin")
    names_file = folder / "fine_label_names.txt"
    names = (tuple(n.strip() for n in names_file.read_text().splitlines() if n.strip()) if names_file.exists()
             else tuple(f"class_{i}" for i in range(100)))
    x = torch.from_numpy(images).float() / 255.0
    return ImageSet(x, torch.from_numpy(labels.astype(np.int64)), names, name=f"cifar100-{split}")


def to_grayscale(data: ImageSet) -> ImageSet:
    """Average of the colour channels, keeping a channel axis: [N, 1, H, W]."""
    return data.with_x(data.x.mean(dim=1, keepdim=True))


def downsample(data: ImageSet, size: int) -> ImageSet:
    """Area-average the images to size x size."""
    return data.with_x(torch.nn.functional.adaptive_avg_pool2d(data.x, size))


# ---- batches -------------------------------------------------------------------------------------

def as_tensors(data: ImageSet) -> dict[str, torch.Tensor]:
    """{"x": [N, C, H, W], "y": [N], "index": [N]}: rows for shared.train.ResumableBatches."""
    return {"x": data.x, "y": data.y, "index": data.indices}


def steps_per_epoch(data: ImageSet, batch_size: int) -> int:
    """Full batches per pass over `data` (ResumableBatches skips the remainder)."""
    return len(data) // batch_size


class AugmentedBatches:
    """Wraps a batch iterator of {"x": [B, C, H, W], ...} (e.g. shared.train.ResumableBatches) and
    applies the standard CIFAR augmentation to x: zero-pad by `pad` pixels and take a random
    H x W crop (a shift of up to `pad` pixels each way), and a horizontal flip with probability
    1/2 when `flip`. Randomness comes from a generator seeded by (seed, draw number), so it is
    reproducible and resumes exactly (state_dict adds the draw count to the inner iterator's)."""

    def __init__(self, inner, pad: int = 4, flip: bool = True, seed: int = 0):
        if pad < 0:
            raise ValueError(f"pad must be >= 0, got {pad}")
        self.inner, self.pad, self.flip, self.seed = inner, pad, flip, seed
        self.draws = 0

    def __iter__(self) -> AugmentedBatches:
        return self

    def __next__(self) -> dict:
        batch = dict(next(self.inner))
        g = torch.Generator().manual_seed(self.seed * 1_000_033 + self.draws)
        self.draws += 1
        x = batch["x"]
        b, _, h, w = x.shape
        if self.pad:
            padded = torch.nn.functional.pad(x, (self.pad,) * 4)
            dy = torch.randint(0, 2 * self.pad + 1, (b,), generator=g)
            dx = torch.randint(0, 2 * self.pad + 1, (b,), generator=g)
            rows = (dy[:, None] + torch.arange(h)[None])[:, None, :, None]      # [B, 1, H, 1]
            cols = (dx[:, None] + torch.arange(w)[None])[:, None, None, :]      # [B, 1, 1, W]
            bi = torch.arange(b)[:, None, None, None]
            ci = torch.arange(x.shape[1])[None, :, None, None]
            x = padded[bi, ci, rows, cols]
        if self.flip:
            flip = torch.rand(b, generator=g) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        batch["x"] = x
        return batch

    def state_dict(self) -> dict:
        return {"inner": self.inner.state_dict(), "draws": self.draws}

    def load_state_dict(self, state: dict) -> None:
        self.inner.load_state_dict(state["inner"])
        self.draws = int(state["draws"])
