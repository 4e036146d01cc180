"""Image-caption pairs from `data_dir` (larger scales): a JSON Lines manifest and image files.

Layout: ``data_dir/captions.jsonl`` (or every ``*.jsonl`` under data_dir), one record per line,
``{"image": "<path relative to the manifest>", "caption": "<text>"}``; or a COCO captions file as COCO
distributes it (``<coco>/annotations/captions_<split>.json``, images in ``<coco>/<split>/``), one record
per caption. Images are read with Pillow, resized so the short side is ``resolution`` and
centre-cropped (SD2's preprocessing), then scaled to [-1, 1].

    records = read_manifest(data_dir)
    tok = load_caption_tokenizer(tokenizer_path, captions=[r.caption for r in records])
    stream = ImageCaptionStream(records, tok, resolution=512, batch_size=8, rank=r, world_size=w)
    batch = next(stream)      # {"images": (B, 3, R, R) float32, "input_ids": (B, L) int64}

The stream never ends, shuffles per epoch with (seed, epoch), gives each rank its own rows, and
resumes exactly (`state_dict` / `load_state_dict`), as the shared Trainer expects.
`write_scene_manifest` writes generated scenes in this format (the smoke and small stand-in for data_dir).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from papers.commoncanvas.scenes import SceneConfig, WordTokenizer, generate_scenes


@dataclass(frozen=True)
class ImageCaption:
    image: Path
    caption: str


def read_manifest(path: str | Path) -> list[ImageCaption]:
    """Every record of a manifest file; or, for a folder, of folder/captions.jsonl, else of all *.jsonl
    files under it (sorted). Image paths are relative to their manifest's folder. A ``.json`` file is read
    as COCO captions (`read_coco_captions`)."""
    root = Path(path)
    if root.is_file() and root.suffix == ".json":
        return read_coco_captions(root)
    if root.is_file():
        files = [root]
    else:
        files = [root / "captions.jsonl"] if (root / "captions.jsonl").exists() else sorted(root.rglob("*.jsonl"))
    if not files:
        raise FileNotFoundError(f"no captions.jsonl (or *.jsonl) manifest under {root}")
    out = []
    for f in files:
        for n, line in enumerate(f.read_text().splitlines(), 1):
            if not line.strip():
                continue
            rec = json.loads(line)
            if "image" not in rec or "caption" not in rec:
                raise ValueError(f"{f}:{n}: a record needs 'image' and 'caption', got keys {sorted(rec)}")
            out.append(ImageCaption(f.parent / rec["image"], str(rec["caption"])))
    return out


def coco_image_dir(annotations: str | Path) -> Path:
    """Where COCO keeps the images of ``<coco>/annotations/captions_<split>.json``: ``<coco>/<split>``."""
    annotations = Path(annotations)
    return annotations.parent.parent / annotations.stem.removeprefix("captions_")


def read_coco_captions(path: str | Path) -> list[ImageCaption]:
    """One record per caption of a COCO captions file (``{"images": [{"id", "file_name", ...}],
    "annotations": [{"id", "image_id", "caption"}]}``, e.g. captions_val2014.json), ordered by image id and
    then annotation id, so an image's first record holds its first caption. Images: `coco_image_dir`."""
    path = Path(path)
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise ValueError(f"{path}: a COCO captions file needs 'images' and 'annotations'")
    files = {im["id"]: im["file_name"] for im in data["images"]}
    missing = sorted({a["image_id"] for a in data["annotations"]} - set(files))
    if missing:
        raise ValueError(f"{path}: {len(missing)} annotated image ids are not in 'images' (e.g. {missing[:3]})")
    folder = coco_image_dir(path)
    rows = sorted(data["annotations"], key=lambda a: (a["image_id"], a["id"]))
    return [ImageCaption(folder / files[a["image_id"]], a["caption"].strip()) for a in rows]


def write_scene_manifest(root: str | Path, images: int, image_size: int, seed: int,
                         manifest: str = "captions.jsonl") -> Path:
    """``images`` generated scenes as PNG files under root/images and their captions as root/<manifest>
    (kept if that manifest already exists). Returns the manifest's path."""
    root = Path(root)
    path = root / manifest
    if path.exists():
        return path
    scenes = generate_scenes(images, SceneConfig(image_size=image_size), seed=seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (img, caption) in enumerate(zip(scenes.images, scenes.captions)):
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(root / "images" / f"{i:06d}.png")
        lines.append(json.dumps({"image": f"images/{i:06d}.png", "caption": caption}))
    path.write_text("\n".join(lines) + "\n")
    return path


def load_image(path: str | Path, resolution: int) -> torch.Tensor:
    """(3, R, R) float32 in [-1, 1]: short side resized to R (bicubic), centre crop."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        scale = resolution / min(w, h)
        im = im.resize((max(resolution, round(w * scale)), max(resolution, round(h * scale))), Image.BICUBIC)
        w, h = im.size
        left, top = (w - resolution) // 2, (h - resolution) // 2
        im = im.crop((left, top, left + resolution, top + resolution))
        arr = np.asarray(im, dtype=np.float32)
    return torch.from_numpy(arr).permute(2, 0, 1) / 127.5 - 1.0


class HFTokenizerAdapter:
    """A transformers tokenizer (e.g. CLIP's BPE from a local folder) with WordTokenizer's interface."""

    def __init__(self, tokenizer, max_length: int):
        self.tokenizer, self.max_length = tokenizer, max_length
        self.vocab_size = len(tokenizer)

    def encode(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.tokenizer(list(texts), padding="max_length", truncation=True, max_length=self.max_length,
                             return_tensors="pt")
        return enc["input_ids"], enc["attention_mask"]


def load_caption_tokenizer(path: str | None, captions: Sequence[str] = (), max_length: int = 77,
                           max_vocab: int = 49408):
    """The tokenizer in a local folder (transformers format), else a word-level one built from captions."""
    if path:
        from transformers import AutoTokenizer     # heavy: imported only when a tokenizer folder is given
        return HFTokenizerAdapter(AutoTokenizer.from_pretrained(path, local_files_only=True), max_length)
    if not captions:
        raise ValueError("without a tokenizer path, give the captions to build a word-level vocabulary from")
    return WordTokenizer.from_texts(captions, max_length=max_length, max_vocab=max_vocab)


class ShardedShuffleStream:
    """The order rules of the caption streams: an endless sequence of global batches of ``batch_size x
    world_size`` rows, read from a permutation of ``size`` rows drawn per epoch from (seed, epoch); a new
    epoch starts when the rest of the permutation cannot fill a global batch, and rank r reads slice r of
    every global batch. Resumable with ``state_dict`` / ``load_state_dict``. Subclasses turn this rank's
    ``next_rows()`` into a batch in ``__next__``; ``what`` names the rows in errors."""

    def __init__(self, size: int, batch_size: int, *, rank: int = 0, world_size: int = 1, seed: int = 0,
                 what: str = "records"):
        if batch_size * world_size > size:
            raise ValueError(f"{size} {what} cannot fill a global batch of {batch_size} x {world_size}")
        self.size, self.batch_size, self.rank, self.world_size, self.seed = size, batch_size, rank, world_size, seed
        self.epoch, self.pos = 0, 0
        self._epoch_order: tuple[int, np.ndarray] | None = None

    def __iter__(self):
        return self

    def _order(self) -> np.ndarray:
        """(size,) the current epoch's permutation (drawn once per epoch)."""
        if self._epoch_order is None or self._epoch_order[0] != self.epoch:
            self._epoch_order = (self.epoch, np.random.default_rng([self.seed, self.epoch]).permutation(self.size))
        return self._epoch_order[1]

    def next_rows(self) -> np.ndarray:
        """(batch_size,) this rank's row indices of the next global batch; advances the position."""
        per_step = self.batch_size * self.world_size
        if self.pos + per_step > self.size:
            self.epoch, self.pos = self.epoch + 1, 0
        start = self.pos + self.rank * self.batch_size
        rows = self._order()[start:start + self.batch_size]
        self.pos += per_step
        return rows

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "pos": self.pos, "seed": self.seed, "world_size": self.world_size}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state["world_size"] != self.world_size or state["seed"] != self.seed:
            raise ValueError(f"stream state {state} does not fit world_size={self.world_size}, seed={self.seed}")
        self.epoch, self.pos = state["epoch"], state["pos"]


class ImageCaptionStream(ShardedShuffleStream):
    """Endless, shuffled, rank-sharded, resumable batches of {"images", "input_ids"}."""

    def __init__(self, records: Sequence[ImageCaption], tokenizer, resolution: int, batch_size: int, *,
                 rank: int = 0, world_size: int = 1, seed: int = 0):
        super().__init__(len(records), batch_size, rank=rank, world_size=world_size, seed=seed, what="records")
        self.records, self.tokenizer, self.resolution = list(records), tokenizer, resolution

    def __next__(self) -> dict[str, torch.Tensor]:
        rows = [self.records[i] for i in self.next_rows()]
        images = torch.stack([load_image(r.image, self.resolution) for r in rows])      # (B, 3, R, R)
        ids, _ = self.tokenizer.encode([r.caption for r in rows])                       # (B, L)
        return {"images": images, "input_ids": ids}
