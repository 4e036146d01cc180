"""Precomputed autoencoder latents and text embeddings for the full-scale path (sd2_full_scale).

The CommonCanvas training stack encodes every image (at each training resolution) with the frozen
autoencoder and every caption with the frozen text encoder once, stores them beside the data, and
trains the UNet on them (mosaicml/diffusion scripts/precompute_latents.py: one posterior draw per
image, scaled by 0.18215, and the caption's text-encoder output, both in float16). Here:

    run_training(text_to_image.PRECOMPUTE_ENTRY_POINT, entry_cfg, run_dir=cache)   # every rank encodes its share
    stream = LatentCaptionStream(cache, batch_size=16, rank=r, world_size=w, seed=s)
    batch = next(stream)   # {"latents": (B, c, s, s) float32, "text_embeds": (B, L, D) float32}

A cache folder holds, per writing rank k, ``part<k>.latents.npy`` (N_k, c, s, s) float16,
``part<k>.text.npy`` (N_k, L, D) float16 and ``part<k>.index.npy`` (N_k,) int64 (the rows of the
record list, after the ``max_images`` subset), and ``meta.json``, written last by rank 0 once every
part is complete. Caption dropout still happens while training (`TextToImageDiffusion.forward`
swaps in the empty caption's embeddings), so it needs no precomputed copy.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from papers.commoncanvas.image_captions import ShardedShuffleStream, load_image

META_FILE = "meta.json"


def cache_dir(out_dir: str | Path, entry_cfg: Mapping[str, Any]) -> Path:
    """out_dir/latents/<manifest>-<max_images or all>-<R>px-<hash of what the encoders see>."""
    keys = ("data_dir", "manifest", "max_images", "max_length", "model", "tokenizer_path", "text_encoder_path",
            "autoencoder_path", "latent_sample", "resolution")
    digest = hashlib.sha1(json.dumps({k: entry_cfg.get(k) for k in keys}, sort_keys=True,
                                     default=str).encode()).hexdigest()[:8]
    name = f"{Path(entry_cfg.get('manifest', 'captions.jsonl')).stem}-{entry_cfg.get('max_images') or 'all'}-" \
           f"{entry_cfg['resolution']}px-{digest}"
    return Path(out_dir) / "latents" / name


def is_complete(cache: str | Path) -> bool:
    return (Path(cache) / META_FILE).exists()


class CaptionedImages(torch.utils.data.Dataset):
    """(index, image (3, R, R) in [-1, 1], caption) of the records ``rows``."""

    def __init__(self, records, rows: np.ndarray, resolution: int):
        self.records, self.rows, self.resolution = records, rows, resolution

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        r = self.records[int(self.rows[i])]
        return int(self.rows[i]), load_image(r.image, self.resolution), r.caption


class LatentCaptionStream(ShardedShuffleStream):
    """Endless, shuffled, rank-sharded, resumable batches of {"latents", "text_embeds"} from a cache
    folder; the order rules of `image_captions.ImageCaptionStream` (`ShardedShuffleStream`)."""

    def __init__(self, cache: str | Path, batch_size: int, *, rank: int = 0, world_size: int = 1, seed: int = 0):
        cache = Path(cache)
        if not is_complete(cache):
            raise FileNotFoundError(f"{cache}: no complete latent cache ({META_FILE} missing)")
        meta = json.loads((cache / META_FILE).read_text())
        parts = [f"part{k:05d}" for k in range(meta["parts"])]
        self.latents = [np.load(cache / f"{p}.latents.npy", mmap_mode="r") for p in parts]
        self.text = [np.load(cache / f"{p}.text.npy", mmap_mode="r") for p in parts]
        self.offsets = np.cumsum([0] + [len(a) for a in self.latents])
        super().__init__(int(self.offsets[-1]), batch_size, rank=rank, world_size=world_size, seed=seed,
                         what="cached rows")

    def __len__(self) -> int:
        return self.size

    def __next__(self) -> dict[str, torch.Tensor]:
        rows = self.next_rows()
        parts = np.searchsorted(self.offsets, rows, side="right") - 1
        latents = np.stack([self.latents[k][r - self.offsets[k]] for k, r in zip(parts, rows)])   # (B, c, s, s)
        text = np.stack([self.text[k][r - self.offsets[k]] for k, r in zip(parts, rows)])         # (B, L, D)
        return {"latents": torch.from_numpy(latents.astype(np.float32)),
                "text_embeds": torch.from_numpy(text.astype(np.float32))}
