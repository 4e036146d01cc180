"""A seeded generator of small captioned scenes: coloured shapes at a position, in a given count.

Each scene is one attribute tuple (colour, shape, position, count) rendered into a small RGB image,
with its true caption, e.g. "two red circles on the left" or "one blue square at the top". All the
objects of a scene share the colour and the shape; their centres lie in the named sector of the
canvas (the four sectors are cut by the diagonals, so positions are mutually exclusive).

    cfg = SceneConfig(image_size=16)
    data = generate_scenes(1000, cfg, seed=0)        # SceneData: images uint8 (N, 3, S, S), labels, captions
    data.captions[0]                                  # 'two green triangles at the bottom'
    tok = WordTokenizer.from_texts(cfg.vocabulary())  # word-level tokenizer over the template's words

This is the smoke-scale stand-in for image-caption data (CommonCanvas, Gokaslan et al. 2024): the
true captions are exact, so a recognizer can check whether a generated image shows what its caption
says, and a captioner trained on a labelled split can caption an unlabelled one ("telephoning").
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from collections.abc import Iterable, Sequence

import numpy as np
import torch

from shared.utils.config import StrictConfig

COLOUR_RGB = {
    "red": (220, 40, 40), "green": (40, 190, 60), "blue": (50, 90, 235), "yellow": (235, 215, 40),
    "magenta": (210, 50, 210), "cyan": (40, 210, 215), "white": (235, 235, 235), "orange": (245, 140, 30),
}
SHAPES = ("square", "circle", "triangle")
POSITIONS = ("left", "right", "top", "bottom")
COUNT_WORDS = ("zero", "one", "two", "three", "four")
ATTRIBUTES = ("colour", "shape", "position", "count")
MIN_IMAGE_SIZE = {1: 8, 2: 12, 3: 24}    # smallest canvas that fits that many objects in one sector


@dataclass(frozen=True)
class SceneConfig(StrictConfig):
    """What scenes look like. Every field is a plain literal so presets can hold it;
    ``SceneConfig.from_dict`` builds one from a preset dict (strict keys, lists become tuples).

    ``object_fraction``: object side as a fraction of ``image_size`` (min, max), drawn per scene.
    ``colour_jitter``: std of a per-scene shift of the RGB value (0..255 units).
    ``background_noise``: std of Gaussian pixel noise on the black background (0..255 units).
    """
    image_size: int = 16
    colours: tuple[str, ...] = ("red", "green", "blue", "yellow")
    shapes: tuple[str, ...] = SHAPES
    positions: tuple[str, ...] = POSITIONS
    counts: tuple[int, ...] = (1, 2)
    object_fraction: tuple[float, float] = (0.32, 0.42)
    colour_jitter: float = 12.0
    background_noise: float = 0.0

    def __post_init__(self) -> None:
        for name, values, valid in (("colours", self.colours, tuple(COLOUR_RGB)), ("shapes", self.shapes, SHAPES),
                                    ("positions", self.positions, POSITIONS)):
            bad = [v for v in values if v not in valid]
            if bad or not values:
                raise ValueError(f"SceneConfig.{name}={values!r}: choose a non-empty subset of {valid}")
        if not self.counts or any(c not in (1, 2, 3) for c in self.counts):
            raise ValueError(f"SceneConfig.counts={self.counts!r}: choose a non-empty subset of (1, 2, 3)")
        need = MIN_IMAGE_SIZE[max(self.counts)]
        if self.image_size < need:
            raise ValueError(f"SceneConfig.image_size={self.image_size} is too small for {max(self.counts)} objects "
                             f"in one sector; use >= {need}")
        lo, hi = self.object_fraction
        if not 0.1 <= lo <= hi <= 0.5:
            raise ValueError(f"object_fraction={self.object_fraction}: need 0.1 <= min <= max <= 0.5")

    def choices(self, attribute: str) -> tuple:
        """The values an attribute takes: ('red', ...), ('square', ...), ('left', ...), (1, 2)."""
        return {"colour": self.colours, "shape": self.shapes, "position": self.positions,
                "count": self.counts}[attribute]

    def num_classes(self) -> dict[str, int]:
        return {a: len(self.choices(a)) for a in ATTRIBUTES}

    def vocabulary(self) -> list[str]:
        """Every word a caption of this config can use."""
        words = {"on", "the", "at"} | set(self.colours) | set(self.positions)
        words |= {COUNT_WORDS[c] for c in self.counts}
        words |= {s if c == 1 else s + "s" for s in self.shapes for c in self.counts}
        return sorted(words)


@dataclass
class SceneData:
    """A batch of scenes. images: uint8 (N, 3, S, S); labels: attribute -> int64 (N,) class indices."""
    images: torch.Tensor
    labels: dict[str, torch.Tensor]
    captions: list[str]
    config: SceneConfig = field(repr=False)

    def __len__(self) -> int:
        return len(self.captions)

    def subset(self, index: Sequence[int] | torch.Tensor) -> SceneData:
        index = torch.as_tensor(index, dtype=torch.long)
        return SceneData(self.images[index], {k: v[index] for k, v in self.labels.items()},
                         [self.captions[i] for i in index.tolist()], self.config)

    def with_captions(self, captions: list[str]) -> SceneData:
        """The same images paired with other captions (e.g. a captioner's synthetic ones)."""
        if len(captions) != len(self):
            raise ValueError(f"got {len(captions)} captions for {len(self)} images")
        return SceneData(self.images, self.labels, list(captions), self.config)

    @staticmethod
    def concat(parts: Sequence[SceneData]) -> SceneData:
        """Scenes of several SceneData (e.g. rendered with different styles) as one; the first's config."""
        return SceneData(torch.cat([p.images for p in parts]),
                         {a: torch.cat([p.labels[a] for p in parts]) for a in ATTRIBUTES},
                         [c for p in parts for c in p.captions], parts[0].config)

    def float_images(self) -> torch.Tensor:
        """Images as float32 in [-1, 1], (N, 3, S, S): the diffusion models' pixel space."""
        return to_model_range(self.images)


def to_model_range(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return images_uint8.float() / 127.5 - 1.0


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8 [0, 255] (clamped)."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


# ---- captions ---------------------------------------------------------------------------------
def caption_for(colour: str, shape: str, position: str, count: int) -> str:
    """'one red square on the left', 'two blue circles at the top'."""
    noun = shape if count == 1 else shape + "s"
    preposition = "on the" if position in ("left", "right") else "at the"
    return f"{COUNT_WORDS[count]} {colour} {noun} {preposition} {position}"


_CAPTION = re.compile(r"^(\w+) (\w+) (\w+?)s? (?:on|at) the (\w+)$")


def parse_caption(caption: str, config: SceneConfig) -> dict[str, int]:
    """The attribute class indices a caption names; ValueError if it is not a caption of ``config``."""
    m = _CAPTION.match(caption.strip())
    if not m:
        raise ValueError(f"not a scene caption: {caption!r}")
    count_word, colour, shape, position = m.groups()
    values = {"colour": colour, "shape": shape, "position": position,
              "count": COUNT_WORDS.index(count_word) if count_word in COUNT_WORDS else None}
    out = {}
    for attribute, value in values.items():
        choices = config.choices(attribute)
        if value not in choices:
            raise ValueError(f"caption {caption!r}: {attribute} {value!r} is not one of {choices}")
        out[attribute] = choices.index(value)
    return out


def captions_from_labels(labels: dict[str, torch.Tensor], config: SceneConfig) -> list[str]:
    """Captions for class-index labels (attribute -> (N,) int tensor)."""
    n = len(next(iter(labels.values())))
    values = {a: [config.choices(a)[i] for i in labels[a].tolist()] for a in ATTRIBUTES}
    return [caption_for(values["colour"][i], values["shape"][i], values["position"][i], values["count"][i])
            for i in range(n)]


def labels_from_captions(captions: Sequence[str], config: SceneConfig) -> dict[str, torch.Tensor]:
    parsed = [parse_caption(c, config) for c in captions]
    return {a: torch.tensor([p[a] for p in parsed], dtype=torch.long) for a in ATTRIBUTES}


# ---- rendering --------------------------------------------------------------------------------
def shape_mask(shape: str, side: int) -> np.ndarray:
    """A (side, side) bool mask of a square, a filled circle or an upward triangle."""
    yy, xx = np.mgrid[0:side, 0:side] + 0.5
    if shape == "square":
        return np.ones((side, side), dtype=bool)
    if shape == "circle":
        r = side / 2
        return (xx - r) ** 2 + (yy - r) ** 2 <= r * r
    if shape == "triangle":
        half_width = yy / side * side / 2          # widens linearly from the apex row to the base row
        return np.abs(xx - side / 2) <= half_width + 0.25
    raise ValueError(f"unknown shape {shape!r}; valid: {SHAPES}")


def in_sector(position: str, cx: float, cy: float, s: int, margin: float = 1.0) -> bool:
    """Whether a point lies in the triangular sector of the canvas a position names.

    The four sectors (left, right, top, bottom) are cut by the diagonals, so they are mutually
    exclusive: an object whose centre is in the left sector is nearer the left edge than the others.
    """
    dx, dy = cx - s / 2, cy - s / 2
    if position in ("left", "right"):
        return abs(dx) - abs(dy) > margin and (dx < 0) == (position == "left")
    return abs(dy) - abs(dx) > margin and (dy < 0) == (position == "top")


@functools.cache
def _sector_corners(position: str, s: int, side: int) -> tuple[tuple[int, int], ...]:
    return tuple((x, y) for x in range(s - side + 1) for y in range(s - side + 1)
                 if in_sector(position, x + side / 2, y + side / 2, s))


def _place(rng: np.random.Generator, position: str, s: int, side: int, count: int) -> list[tuple[int, int]] | None:
    """Top-left corners of ``count`` non-overlapping side x side boxes whose centres lie in the sector."""
    valid = _sector_corners(position, s, side)
    if not valid:
        return None
    for _ in range(100):
        corners = [valid[i] for i in rng.integers(0, len(valid), size=count)]
        if all(abs(a[0] - b[0]) > side or abs(a[1] - b[1]) > side
               for i, a in enumerate(corners) for b in corners[i + 1:]):
            return corners
    return None


def render_scene(rng: np.random.Generator, config: SceneConfig, colour: str, shape: str, position: str,
                 count: int) -> np.ndarray:
    """One scene as uint8 (3, S, S)."""
    s = config.image_size
    canvas = np.zeros((s, s, 3), dtype=np.float32)
    if config.background_noise > 0:
        canvas += np.abs(rng.normal(0, config.background_noise, size=(s, s, 1)))
    lo, hi = config.object_fraction
    side = int(round(s * rng.uniform(lo, hi)))
    rgb = np.clip(np.asarray(COLOUR_RGB[colour], dtype=np.float32) + rng.normal(0, config.colour_jitter, 3), 0, 255)
    corners = None
    while corners is None:      # several objects must fit in one sector: shrink until they do
        corners = _place(rng, position, s, side, count)
        if corners is None:
            if side <= 3:
                raise RuntimeError(f"cannot place {count} objects in the {position} sector of a {s}px canvas")
            side -= 1
    mask = shape_mask(shape, side)
    for x, y in corners:
        canvas[y:y + side, x:x + side][mask] = rgb
    return np.clip(canvas, 0, 255).round().astype(np.uint8).transpose(2, 0, 1)


def generate_scenes(n: int, config: SceneConfig | None = None, seed: int = 0,
                    labels: dict[str, torch.Tensor] | None = None) -> SceneData:
    """``n`` seeded scenes with attributes drawn uniformly (or given as ``labels``) and true captions."""
    config = config or SceneConfig()
    rng = np.random.default_rng(seed)
    if labels is None:
        labels = {a: torch.as_tensor(rng.integers(0, len(config.choices(a)), size=n), dtype=torch.long)
                  for a in ATTRIBUTES}
    elif any(len(labels[a]) != n for a in ATTRIBUTES):
        raise ValueError(f"labels must give all of {ATTRIBUTES}, {n} each")
    images = np.empty((n, 3, config.image_size, config.image_size), dtype=np.uint8)
    for i in range(n):
        attrs = [config.choices(a)[int(labels[a][i])] for a in ATTRIBUTES]
        images[i] = render_scene(rng, config, *attrs)
    return SceneData(torch.from_numpy(images), labels, captions_from_labels(labels, config), config)


# ---- compositions ----------------------------------------------------------------------------
def split_compositions(config: SceneConfig, held_out_every: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Every attribute tuple of ``config`` as class indices, split into training and held-out compositions.

    Returns (train (C_train, 4), held_out (C_held, 4)) int64 arrays, columns in ATTRIBUTES order. A tuple
    is held out when the sum of its class indices is ``offset`` modulo ``held_out_every``: about one in
    ``held_out_every`` compositions, spread so that every single attribute value (and, with 4 colours,
    3 shapes, 4 positions and 2 counts, every pair of values) still occurs in training. A model that draws
    a held-out composition well has put together attribute values it only saw apart.
    """
    if held_out_every < 2:
        raise ValueError(f"held_out_every={held_out_every}: need >= 2 (one in that many compositions held out)")
    grid = np.array(np.meshgrid(*[np.arange(len(config.choices(a))) for a in ATTRIBUTES], indexing="ij"))
    table = grid.reshape(len(ATTRIBUTES), -1).T.astype(np.int64)                 # (C, 4)
    held = table.sum(axis=1) % held_out_every == offset % held_out_every
    return table[~held], table[held]


def generate_compositions(n: int, config: SceneConfig, compositions: np.ndarray, seed: int = 0) -> SceneData:
    """``n`` seeded scenes whose attribute tuples are drawn uniformly from ``compositions`` (C, 4)."""
    rng = np.random.default_rng(seed)
    pick = compositions[rng.integers(0, len(compositions), size=n)]               # (n, 4)
    labels = {a: torch.as_tensor(pick[:, j], dtype=torch.long) for j, a in enumerate(ATTRIBUTES)}
    return generate_scenes(n, config, seed=seed, labels=labels)


# ---- tokenizer --------------------------------------------------------------------------------
class WordTokenizer:
    """A word-level tokenizer for template captions: lower-cased whitespace words, padded to max_length.

    Ids: 0 <pad>, 1 <bos>, 2 <eos>, 3 <unk>, then the vocabulary. ``encode`` returns
    input_ids (B, L) and attention_mask (B, L). An empty caption encodes as <bos> <eos>: the
    "unconditional" prompt of classifier-free guidance.
    """
    SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
    pad_id, bos_id, eos_id, unk_id = 0, 1, 2, 3

    def __init__(self, words: Iterable[str], max_length: int = 12):
        self.words = list(self.SPECIALS) + sorted(set(words) - set(self.SPECIALS))
        self.index = {w: i for i, w in enumerate(self.words)}
        self.max_length = max_length

    @classmethod
    def from_texts(cls, texts: Iterable[str], max_length: int = 12, max_vocab: int | None = None) -> WordTokenizer:
        """Vocabulary from a corpus of captions (the most frequent ``max_vocab`` words), or a word list."""
        counts: dict[str, int] = {}
        for text in texts:
            for w in text.lower().split():
                counts[w] = counts.get(w, 0) + 1
        words = sorted(counts, key=lambda w: (-counts[w], w))[:max_vocab]
        return cls(words, max_length=max_length)

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    def encode(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.full((len(texts), self.max_length), self.pad_id, dtype=torch.long)
        for i, text in enumerate(texts):
            toks = [self.bos_id] + [self.index.get(w, self.unk_id) for w in text.lower().split()]
            toks = toks[: self.max_length - 1] + [self.eos_id]
            ids[i, : len(toks)] = torch.tensor(toks)
        return ids, (ids != self.pad_id).long()

    def decode(self, ids: torch.Tensor) -> list[str]:
        out = []
        for row in ids.tolist():
            out.append(" ".join(self.words[i] for i in row if i > self.unk_id or i == self.unk_id))
        return out
