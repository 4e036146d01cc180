"""commoncanvas's full-scale data path: random nested data-scarcity subsets, the precomputed-latent stream and
the order rules it shares with the image-caption stream."""
from __future__ import annotations

import json

import numpy as np
import pytest

from papers.commoncanvas.image_captions import ImageCaption, ImageCaptionStream, ShardedShuffleStream
from papers.commoncanvas.latent_cache import META_FILE, LatentCaptionStream
from papers.commoncanvas.scenes import WordTokenizer
from papers.commoncanvas.text_to_image import subset


def test_scarcity_subsets_are_random_nested_and_in_manifest_order():
    records = list(range(1000))
    small, large = subset(records, 50, seed=0), subset(records, 200, seed=0)
    assert len(small) == 50 and len(large) == 200 and set(small) <= set(large)
    assert small == sorted(small) and small != records[:50]                 # not the manifest's first rows
    assert max(small) > 500                                                 # drawn from the whole manifest
    assert subset(records, None) == records and subset(records, 5000) == records
    assert subset(records, 50, seed=1) != small


def _cache(tmp_path, sizes=(7, 5)):
    """A cache of two writer parts whose latents hold their global row number."""
    start = 0
    for k, n in enumerate(sizes):
        rows = np.arange(start, start + n)
        np.save(tmp_path / f"part{k:05d}.latents.npy", np.broadcast_to(rows[:, None, None, None], (n, 2, 2, 2))
                .astype(np.float16))
        np.save(tmp_path / f"part{k:05d}.text.npy", np.broadcast_to(rows[:, None, None], (n, 3, 4)).astype(np.float16))
        np.save(tmp_path / f"part{k:05d}.index.npy", rows)
        start += n
    return tmp_path


def test_latent_stream_shards_every_row_once_per_epoch_and_resumes(tmp_path):
    cache = _cache(tmp_path)
    with pytest.raises(FileNotFoundError, match="no complete latent cache"):
        LatentCaptionStream(cache, batch_size=2)
    (cache / META_FILE).write_text(json.dumps({"records": 12, "parts": 2}))
    ranks = [LatentCaptionStream(cache, batch_size=2, rank=r, world_size=2, seed=3) for r in range(2)]
    seen = []
    for _ in range(3):                           # 3 global steps of 4 rows = one epoch of 12
        batches = [next(s) for s in ranks]
        assert batches[0]["latents"].shape == (2, 2, 2, 2) and batches[0]["text_embeds"].shape == (2, 3, 4)
        for b in batches:
            assert (b["latents"][:, 0, 0, 0] == b["text_embeds"][:, 0, 0]).all()   # latents and captions together
            seen += b["latents"][:, 0, 0, 0].int().tolist()
    assert sorted(seen) == list(range(12))
    state = ranks[0].state_dict()
    expected = next(ranks[0])["latents"]
    resumed = LatentCaptionStream(cache, batch_size=2, rank=0, world_size=2, seed=3)
    resumed.load_state_dict(state)
    assert (next(resumed)["latents"] == expected).all()
    with pytest.raises(ValueError, match="does not fit world_size"):
        LatentCaptionStream(cache, batch_size=2, rank=0, world_size=1, seed=3).load_state_dict(state)
    with pytest.raises(ValueError, match="cannot fill a global batch"):
        LatentCaptionStream(cache, batch_size=8, world_size=2)


def test_both_streams_follow_the_shared_order_rules(tmp_path):
    cache = _cache(tmp_path)
    (cache / META_FILE).write_text(json.dumps({"records": 12, "parts": 2}))
    rule = ShardedShuffleStream(12, 2, rank=1, world_size=2, seed=5)
    latents = LatentCaptionStream(cache, batch_size=2, rank=1, world_size=2, seed=5)
    records = [ImageCaption(tmp_path / "unused.png", str(i)) for i in range(12)]
    captions = ImageCaptionStream(records, WordTokenizer([str(i) for i in range(12)]), 8, 2, rank=1, world_size=2,
                                  seed=5)
    captions_rows = lambda: [int(records[i].caption) for i in captions.next_rows()]   # noqa: E731
    for step in range(8):                        # 3 global steps per epoch: crosses two epoch boundaries
        expected = rule.next_rows().tolist()
        assert next(latents)["latents"][:, 0, 0, 0].int().tolist() == expected == captions_rows()
        if step == 0:
            first_epoch = rule.state_dict()
    assert rule.epoch == 2 and len(latents) == 12
    # the per-epoch permutation is cached; rewinding to an earlier epoch redraws that epoch's order
    rewound = ShardedShuffleStream(12, 2, rank=1, world_size=2, seed=5)
    rewound.load_state_dict(first_epoch)
    rule.load_state_dict(first_epoch)
    assert rule.next_rows().tolist() == rewound.next_rows().tolist()
    with pytest.raises(ValueError, match="3 things cannot fill a global batch of 2 x 2"):
        ShardedShuffleStream(3, 2, world_size=2, what="things")
