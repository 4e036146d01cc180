"""The scene generator: seeded, and every caption says what its image shows (colour, shape,
position, count); the caption template round-trips; the word tokenizer."""
import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from papers.commoncanvas.image_captions import (ImageCaptionStream, load_caption_tokenizer, load_image, read_manifest,
                                                write_scene_manifest)
from papers.commoncanvas.scenes import (ATTRIBUTES, COLOUR_RGB, SceneConfig, WordTokenizer, caption_for,
                                        captions_from_labels, generate_compositions, generate_scenes, in_sector,
                                        labels_from_captions, parse_caption, shape_mask, split_compositions)

CFG = SceneConfig(image_size=16, colour_jitter=0.0)


@pytest.fixture(scope="module")
def scenes():
    return generate_scenes(300, CFG, seed=3)


def test_seeded_and_shapes(scenes):
    again = generate_scenes(300, CFG, seed=3)
    assert torch.equal(scenes.images, again.images) and scenes.captions == again.captions
    assert scenes.images.shape == (300, 3, 16, 16) and scenes.images.dtype == torch.uint8
    assert not torch.equal(generate_scenes(300, CFG, seed=4).images, scenes.images)
    x = scenes.float_images()
    assert x.min() >= -1 and x.max() <= 1


def test_every_caption_matches_its_image(scenes):
    for img, caption in zip(scenes.images, scenes.captions):
        words = caption.split()
        count, colour, position = ("one", "two", "three").index(words[0]) + 1, words[1], words[-1]
        shape = words[2].rstrip("s")
        rgb = img.permute(1, 2, 0).numpy().astype(int)
        on = rgb.sum(-1) > 0
        # colour: every lit pixel has the caption's colour
        assert (np.abs(rgb[on] - np.array(COLOUR_RGB[colour])).max(-1) <= 1).all(), caption
        # count: connected blobs
        blobs, n = ndimage.label(on)
        assert n == count, f"{caption}: {n} blobs"
        for k in range(1, n + 1):
            ys, xs = np.nonzero(blobs == k)
            side = max(np.ptp(xs), np.ptp(ys)) + 1
            # position: each object's box centre lies in the caption's sector
            cx, cy = xs.min() + side / 2, ys.min() + side / 2
            assert in_sector(position, cx, cy, 16, margin=0.5), f"{caption}: centre ({cx}, {cy})"
            # shape: row widths of the blob; a square's are all full, a circle's are symmetric and
            # narrower at top and bottom, a triangle's widen from the apex to the base
            widths = (blobs[ys.min():ys.min() + side] == k).sum(1)
            if shape == "square":
                assert (widths == side).all(), caption
            elif shape == "circle":
                assert widths[0] == widths[-1] < widths.max(), caption
            else:
                assert widths[0] < widths[-1] == side and (np.diff(widths) >= 0).all(), caption


def test_positions_are_mutually_exclusive():
    grid = np.linspace(0, 16, 33)
    for cx in grid:
        for cy in grid:
            assert sum(in_sector(p, cx, cy, 16) for p in ("left", "right", "top", "bottom")) <= 1


def test_caption_template_round_trips(scenes):
    assert caption_for("red", "circle", "left", 2) == "two red circles on the left"
    assert caption_for("blue", "square", "top", 1) == "one blue square at the top"
    labels = labels_from_captions(scenes.captions, CFG)
    for a in labels:
        assert torch.equal(labels[a], scenes.labels[a])
    assert captions_from_labels(labels, CFG) == scenes.captions
    with pytest.raises(ValueError):
        parse_caption("a red thing somewhere", CFG)
    with pytest.raises(ValueError, match="colour"):
        parse_caption("one purple circle on the left", CFG)


def test_given_labels_and_subset():
    labels = {"colour": torch.tensor([0, 1]), "shape": torch.tensor([2, 0]), "position": torch.tensor([3, 1]),
              "count": torch.tensor([1, 0])}
    d = generate_scenes(2, CFG, seed=0, labels=labels)
    assert d.captions == ["two red triangles at the bottom", "one green square on the right"]
    sub = d.subset([1])
    assert sub.captions == ["one green square on the right"] and sub.images.shape[0] == 1
    with pytest.raises(ValueError):
        d.with_captions(["x"])


@pytest.mark.parametrize("config", [CFG, SceneConfig(image_size=24, counts=(1, 2, 3),
                                                        colours=("red", "green", "blue", "yellow", "magenta", "cyan"))])
def test_held_out_compositions_at_every_seed(config):
    """The 02/03 split: disjoint, complete, about one in four held out, every pair of attribute values still
    trained on; scenes drawn from either side use only that side's compositions, at every seed."""
    total = int(np.prod([len(config.choices(a)) for a in ATTRIBUTES]))
    for seed in range(12):
        train, held = split_compositions(config, 4, offset=seed)
        assert len(train) + len(held) == total and abs(len(held) - total / 4) <= total / 8
        assert not {tuple(r) for r in train} & {tuple(r) for r in held}
        for i in range(len(ATTRIBUTES)):
            for j in range(i + 1, len(ATTRIBUTES)):
                pairs = {(a, b) for a in range(len(config.choices(ATTRIBUTES[i])))
                         for b in range(len(config.choices(ATTRIBUTES[j])))}
                assert {(r[i], r[j]) for r in train} == pairs
        data = generate_compositions(64, config, held, seed=seed)
        drawn = np.stack([data.labels[a].numpy() for a in ATTRIBUTES], axis=1)
        assert {tuple(r) for r in drawn} <= {tuple(r) for r in held} and len(data) == 64
        assert data.captions == captions_from_labels(data.labels, config)
    with pytest.raises(ValueError):
        split_compositions(config, 1)


def test_config_validation():
    with pytest.raises(ValueError, match="colours"):
        SceneConfig(colours=("red", "mauve"))
    with pytest.raises(ValueError, match="counts"):
        SceneConfig(counts=(5,))
    with pytest.raises(ValueError, match=">= 24"):
        SceneConfig(image_size=16, counts=(1, 3))
    for size, counts in ((8, (1,)), (12, (1, 2)), (24, (1, 2, 3))):
        assert len(generate_scenes(200, SceneConfig(image_size=size, counts=counts), seed=0)) == 200
    assert shape_mask("square", 4).all()
    with pytest.raises(ValueError):
        shape_mask("hexagon", 4)
    assert set(CFG.vocabulary()) >= {"red", "circles", "circle", "left", "two"}


def test_word_tokenizer():
    tok = WordTokenizer(CFG.vocabulary(), max_length=10)
    ids, mask = tok.encode(["two red circles on the left", ""])
    assert ids.shape == (2, 10) and ids[0, 0] == tok.bos_id and ids[0, 7] == tok.eos_id
    assert ids[1, :2].tolist() == [tok.bos_id, tok.eos_id] and mask[1].sum() == 2
    assert tok.decode(ids)[0] == "two red circles on the left"
    assert tok.encode(["one zebra"])[0][0, 2] == tok.unk_id
    tok2 = WordTokenizer.from_texts(["a b b", "b c"], max_vocab=2)
    assert set(tok2.words[4:]) == {"a", "b"}


def test_image_caption_manifest_and_stream(tmp_path):
    data = generate_scenes(10, CFG, seed=0)
    (tmp_path / "img").mkdir()
    lines = []
    for i, (img, cap) in enumerate(zip(data.images, data.captions)):
        Image.fromarray(img.permute(1, 2, 0).numpy()).resize((24, 16)).save(tmp_path / "img" / f"{i}.png")
        lines.append(f'{{"image": "img/{i}.png", "caption": "{cap}"}}')
    (tmp_path / "captions.jsonl").write_text("\n".join(lines))
    records = read_manifest(tmp_path)
    assert [r.caption for r in records] == data.captions and records == read_manifest(tmp_path / "captions.jsonl")
    x = load_image(records[0].image, 8)
    assert x.shape == (3, 8, 8) and -1 <= x.min() and x.max() <= 1
    tok = load_caption_tokenizer(None, [r.caption for r in records], max_length=10)
    ranks = [ImageCaptionStream(records, tok, 8, 2, rank=r, world_size=2, seed=1) for r in range(2)]
    first = [next(s) for s in ranks]
    assert first[0]["images"].shape == (2, 3, 8, 8) and first[0]["input_ids"].shape == (2, 10)
    assert not torch.equal(first[0]["input_ids"], first[1]["input_ids"])
    state = ranks[0].state_dict()
    after = next(ranks[0])
    resumed = ImageCaptionStream(records, tok, 8, 2, rank=0, world_size=2, seed=1)
    resumed.load_state_dict(state)
    assert torch.equal(next(resumed)["images"], after["images"])
    (tmp_path / "bad.jsonl").write_text('{"img": "x"}\n')
    with pytest.raises(ValueError, match="caption"):
        read_manifest(tmp_path / "bad.jsonl")


def test_scene_manifest_reads_back(tmp_path):
    path = write_scene_manifest(tmp_path, 5, 16, seed=2)
    records = read_manifest(tmp_path)
    assert path == tmp_path / "captions.jsonl" and len(records) == 5
    assert [r.caption for r in records] == generate_scenes(5, SceneConfig(image_size=16), seed=2).captions
    assert load_image(records[0].image, 16).shape == (3, 16, 16)
