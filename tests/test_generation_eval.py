"""commoncanvas's full-scale quality evaluation: one image per held-out caption, FID / KID / CLIP score."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from papers.commoncanvas.eval_fixtures import write_coco_captions, write_generation_eval_fixtures
from papers.commoncanvas.generation_eval import GenerationEvalSpec, evaluate_generation, first_caption_per_image, score_images
from papers.commoncanvas.image_captions import coco_image_dir, load_image, read_manifest, write_scene_manifest
from papers.commoncanvas.image_metrics import (_frechet_low_rank, feature_statistics, frechet_distance,
                                               frechet_distance_of_features, inception_feature_fn, load_clip)
from papers.commoncanvas.preflight import evaluation_requirements
from papers.commoncanvas.scales import NOTEBOOKS, SD2_TINY
from papers.commoncanvas.scenes import SceneConfig, generate_scenes
from papers.commoncanvas.text_to_image import build_from_config
from shared.preflight.report import data_errors


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


def test_coco_captions_fixture_reads_back_in_coco_order(tmp_path):
    path = tmp_path / "coco" / "annotations" / "captions_val2014.json"
    write_coco_captions(path, images=3, image_size=16, seed=0, captions_per_image=2)
    data = json.loads(path.read_text())
    assert set(data) >= {"images", "annotations"} and len(data["images"]) == 3 and len(data["annotations"]) == 6
    assert {im["width"] for im in data["images"]} == {21} and {im["height"] for im in data["images"]} == {16}
    records = read_manifest(path)
    scenes = generate_scenes(3, SceneConfig(image_size=16), seed=0)
    assert [r.caption for r in first_caption_per_image(records, None)] == scenes.captions   # first caption per image
    assert records[1].caption == "a picture of " + scenes.captions[0]
    assert records[0].image.parent == coco_image_dir(path) == tmp_path / "coco" / "val2014"
    assert records[0].image.name.startswith("COCO_val2014_") and records[0].image.exists()
    # the centre crop of the landscape JPEG is the scene again (up to JPEG's loss)
    assert (load_image(records[0].image, 16) - scenes.float_images()[0]).abs().mean() < 0.1
    with pytest.raises(ValueError, match="annotations/captions_<split>.json"):
        write_coco_captions(tmp_path / "captions.json", images=1, image_size=16, seed=0)
    data["annotations"][0]["image_id"] = -1
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="1 annotated image ids are not in 'images'"):
        read_manifest(tmp_path / "bad.json")


def test_fid_of_few_samples_is_the_exact_trace():
    rng = np.random.default_rng(0)
    many_x, many_y = rng.normal(size=(200, 4)), rng.normal(size=(300, 4)) * 1.5 + 0.3
    by_sqrtm = frechet_distance(*feature_statistics(many_x), *feature_statistics(many_y))
    assert frechet_distance_of_features(many_x, many_y) == by_sqrtm
    assert _frechet_low_rank(many_x, many_y) == pytest.approx(by_sqrtm, rel=1e-9)   # the same quantity
    few_x, few_y = rng.normal(size=(5, 16)), rng.normal(size=(7, 16)) + 0.5          # singular covariances
    s_x, s_y = np.cov(few_x, rowvar=False), np.cov(few_y, rowvar=False)
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvals(s_x @ s_y).real, 0, None)).sum()
    exact = ((few_x.mean(0) - few_y.mean(0)) ** 2).sum() + np.trace(s_x) + np.trace(s_y) - 2 * trace_sqrt
    assert frechet_distance_of_features(few_x, few_y) == pytest.approx(exact, rel=1e-6)
    assert frechet_distance_of_features(few_x, few_x) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="same D"):
        frechet_distance_of_features(few_x, few_y[:, :8])


@pytest.mark.slow
def test_smoke_fixtures_feed_the_full_loaders_and_scores(tmp_path):
    pytest.importorskip("transformers")
    spec = GenerationEvalSpec.from_dict(NOTEBOOKS["sd2_full_scale"].resolve("smoke")["evaluation"])
    rng_before = torch.random.get_rng_state()
    write_generation_eval_fixtures(tmp_path, spec, image_size=32, seed=0, images=3)
    assert torch.equal(torch.random.get_rng_state(), rng_before)          # a run's later draws are unchanged
    assert data_errors(evaluation_requirements(spec), tmp_path) == []     # what the full preflight checks
    records = first_caption_per_image(read_manifest(tmp_path / spec.manifest), 2, seed=0)
    real = torch.stack([load_image(r.image, spec.resolution) for r in records])          # (2, 3, 32, 32)
    generated = real.flip(-1)
    scores = score_images(real, generated, [r.caption for r in records],
                          feature_fn=inception_feature_fn(str(tmp_path / spec.fid_weights)),
                          clip=load_clip(str(tmp_path / spec.clip_dir)), kid_subsets=3)
    assert set(scores) == {"n", "fid", "kid", "kid_std", "clip_score"} and scores["n"] == 2
    assert all(np.isfinite(v) for v in scores.values()) and scores["fid"] > 0
    again = GenerationEvalSpec(manifest=spec.manifest, images=1, fid_weights=spec.fid_weights, clip_dir=spec.clip_dir)
    write_generation_eval_fixtures(tmp_path, again, image_size=32, seed=1)             # kept, not rewritten
    assert len(read_manifest(tmp_path / spec.manifest)) == 3 * 5
