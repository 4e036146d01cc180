"""Small files in the formats the full-scale quality evaluation (``generation_eval``) reads from data_dir,
for smoke runs and tests: the reading and scoring code is the full path's, the networks' weights are
random, so the scores only check that the path runs.

    write_generation_eval_fixtures(data_root, spec, image_size=32, seed=0)   # spec: a GenerationEvalSpec

writes, where ``spec`` points (each kept if it already exists):
  data_root/<spec.manifest>      COCO captions as COCO distributes them (``annotations/captions_<split>.json``
                                 with ``images`` and ``annotations``, several captions per image) and the
                                 images as ``<coco>/<split>/COCO_<split>_<id:012d>.jpg`` (generated scenes,
                                 padded to COCO's 4:3 landscape shape)
  data_root/<spec.fid_weights>   an FID Inception-v3 state dict with the keys and shapes of the
                                 pt_inception-2015-12-05 file (its 1008-way ``fc`` included), random weights
  data_root/<spec.clip_dir>      a tiny transformers CLIPModel (config.json and weights) with a byte-level
                                 BPE tokenizer trained on the captions, as ``save_pretrained`` writes them
Nothing here draws from the global random state (a run's later random numbers are unchanged).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from papers.commoncanvas.fid_inception import FEATURES, FIDInception
from papers.commoncanvas.generation_eval import GenerationEvalSpec
from papers.commoncanvas.image_captions import coco_image_dir
from papers.commoncanvas.scenes import SceneConfig, generate_scenes
from shared.data.tokenizer import train_bpe

CAPTION_FORMS = ("{}", "a picture of {}", "an image showing {}", "{} on a black background", "a photo of {}")
FID_CLASSES = 1008        # the pt_inception file's classifier (TensorFlow's 1008 ImageNet outputs)


def write_coco_captions(path: str | Path, images: int, image_size: int, seed: int,
                        captions_per_image: int = 5) -> Path:
    """``images`` generated scenes (image_size x 4/3 image_size JPEGs) with ``captions_per_image`` captions
    each (the scene's caption first) as a COCO captions file at ``path`` (…/annotations/captions_<split>.json)."""
    path = Path(path)
    if path.exists():
        return path
    if path.parent.name != "annotations" or not path.stem.startswith("captions_"):
        raise ValueError(f"{path}: COCO keeps captions as <coco>/annotations/captions_<split>.json")
    split, folder = path.stem.removeprefix("captions_"), coco_image_dir(path)
    folder.mkdir(parents=True, exist_ok=True)
    scenes = generate_scenes(images, SceneConfig(image_size=image_size), seed=seed)
    width = image_size * 4 // 3
    pad = (width - image_size) // 2
    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(1_000_000, size=images, replace=False)) + 1
    entries, annotations = [], []
    for image_id, img, caption in zip(ids.tolist(), scenes.images, scenes.captions):
        canvas = np.zeros((image_size, width, 3), dtype=np.uint8)               # black, like the scenes
        canvas[:, pad:pad + image_size] = img.permute(1, 2, 0).numpy()
        name = f"COCO_{split}_{image_id:012d}.jpg"
        Image.fromarray(canvas).save(folder / name, quality=95)
        entries.append({"license": 0, "file_name": name, "height": image_size, "width": width, "id": image_id})
        for form in CAPTION_FORMS[:captions_per_image]:
            annotations.append({"image_id": image_id, "id": len(annotations) + 1, "caption": form.format(caption)})
    order = rng.permutation(len(annotations))            # COCO's file is not grouped by image
    data = {"info": {"description": "generated scenes in COCO's captions format"}, "licenses": [],
            "images": entries, "annotations": [annotations[i] for i in order]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def write_fid_inception_weights(path: str | Path, seed: int) -> Path:
    """A state dict in the pt_inception file's layout with random weights (He-normal convolutions, so the
    2048-d features keep a usable scale through the network's depth) at ``path``."""
    path = Path(path)
    if path.exists():
        return path
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = FIDInception()
        for module in net.modules():
            if isinstance(module, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
        state["fc.weight"] = torch.randn(FID_CLASSES, FEATURES) * 0.01
        state["fc.bias"] = torch.zeros(FID_CLASSES)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def write_clip_folder(folder: str | Path, captions: Sequence[str], seed: int, image_size: int = 32) -> Path:
    """A random 1-layer CLIPModel (32-d towers, ``image_size`` px, 8 px patches) and a byte-level BPE
    trained on ``captions``, saved to ``folder`` with ``save_pretrained``."""
    from transformers import CLIPConfig, CLIPModel     # heavy: imported only when fixtures are written

    folder = Path(folder)
    if (folder / "config.json").exists():
        return folder
    tokenizer = train_bpe(list(captions) * 2, vocab_size=400, show_progress=False)
    special = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
               "pad_token_id": tokenizer.pad_token_id}
    config = CLIPConfig(
        text_config={"vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 32, **special},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": image_size, "patch_size": 8},
        projection_dim=16)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CLIPModel(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_generation_eval_fixtures(data_root: str | Path, spec: GenerationEvalSpec, image_size: int, seed: int,
                                   images: int | None = None) -> None:
    """The evaluation set, FID weights and CLIP folder of ``spec`` under ``data_root`` (see the module
    docstring). images: how many images to write (default two more than ``spec.images``, so the seeded
    draw of ``evaluate_generation`` has a choice; 8 when spec.images is None)."""
    data_root = Path(data_root)
    n = images if images is not None else (spec.images + 2 if spec.images else 8)
    manifest = write_coco_captions(data_root / spec.manifest, n, image_size, seed)
    if spec.fid_weights is not None:
        write_fid_inception_weights(data_root / spec.fid_weights, seed)
    if spec.clip_dir is not None:
        annotations = json.loads(manifest.read_text())["annotations"]
        write_clip_folder(data_root / spec.clip_dir, [a["caption"] for a in annotations], seed)


__all__ = ["write_clip_folder", "write_coco_captions", "write_fid_inception_weights",
           "write_generation_eval_fixtures"]
