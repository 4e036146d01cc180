"""commoncanvas's full-scale quality evaluation: one image per held-out caption, FID / KID / CLIP score."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from papers.commoncanvas.generation_eval import GenerationEvalSpec, evaluate_generation, first_caption_per_image, score_images
from papers.commoncanvas.image_captions import write_scene_manifest
from papers.commoncanvas.scales import SD2_TINY
from papers.commoncanvas.text_to_image import build_from_config


def test_one_caption_per_image_then_a_seeded_draw():
    records = [SimpleNamespace(image=f"{i // 5}.jpg", caption=f"caption {i}") for i in range(50)]   # 5 per image
    unique = first_caption_per_image(records, None)
    assert [r.caption for r in unique] == [f"caption {5 * i}" for i in range(10)]
    drawn = first_caption_per_image(records, 4, seed=1)
    assert len(drawn) == 4 and {r.image for r in drawn} <= {r.image for r in unique}
    assert drawn == first_caption_per_image(records, 4, seed=1) != first_caption_per_image(records, 4, seed=2)


def test_scores_separate_a_copy_from_noise():
    g = torch.Generator().manual_seed(0)
    real = torch.rand(64, 3, 8, 8, generator=g) * 2 - 1
    pooled = lambda x: torch.nn.functional.avg_pool2d(x, 4).flatten(1)    # noqa: E731  (N, 12) features
    same = score_images(real, real.clone(), ["c"] * 64, feature_fn=pooled, clip=None, kid_subsets=10,
                        kid_subset_size=32)
    noise = score_images(real, torch.rand(64, 3, 8, 8, generator=g) * 0.2, ["c"] * 64, feature_fn=pooled, clip=None,
                         kid_subsets=10, kid_subset_size=32)
    assert same["fid"] < 1e-6 and abs(same["kid"]) < 0.01 and "clip_score" not in same   # KID: unbiased, noisy
    assert noise["fid"] > 0.05 and noise["kid"] > 10 * abs(same["kid"]) and noise["n"] == 64


@pytest.mark.slow
def test_evaluate_generation_end_to_end(tmp_path):
    write_scene_manifest(tmp_path, images=6, image_size=32, seed=0)
    model, tokenizer, _ = build_from_config({"data_dir": str(tmp_path), "model": SD2_TINY, "resolution": 32,
                                             "max_length": 12})
    spec = GenerationEvalSpec(manifest="captions.jsonl", images=4, fid_weights=None, clip_dir=None, resolution=32,
                              sampling_steps=2, micro_batch_size=3)
    calls = []
    out = evaluate_generation(model, tokenizer, tmp_path, spec, device="cpu", progress=lambda d, t: calls.append((d, t)))
    assert out == {"n": 4.0} and calls == [(3, 4), (4, 4)]
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        evaluate_generation(model, tokenizer, tmp_path, GenerationEvalSpec(
            manifest="captions.jsonl", images=2, fid_weights="absent.pth", clip_dir=None, resolution=32,
            sampling_steps=1), device="cpu")
