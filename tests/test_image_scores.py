"""commoncanvas's full-scale image scores: the FID Inception read strictly from a weights file, KID, and the
CLIP score through a local transformers CLIPModel."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from papers.commoncanvas.fid_inception import FEATURES, FIDInception, load_fid_inception
from papers.commoncanvas.image_metrics import clip_score, inception_feature_fn, kid_from_features


def test_fid_inception_has_the_published_size():
    # Inception-v3 without its classifier and auxiliary head: 21.8M parameters (torchvision's 27.2M less
    # the 2.05M fc and 3.3M AuxLogits)
    n = sum(p.numel() for p in FIDInception().parameters())
    assert 21.7e6 < n < 21.9e6


@pytest.mark.slow
def test_fid_inception_loads_a_file_strictly(tmp_path):
    torch.manual_seed(0)
    net = FIDInception()
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    state["fc.weight"], state["fc.bias"] = torch.zeros(1008, FEATURES), torch.zeros(1008)   # the file's classifier
    torch.save(state, tmp_path / "pt_inception.pth")
    features = inception_feature_fn(str(tmp_path / "pt_inception.pth"))(torch.rand(1, 3, 64, 64) * 2 - 1)
    assert features.shape == (1, FEATURES)
    loaded = load_fid_inception(tmp_path / "pt_inception.pth")
    assert torch.equal(loaded.Mixed_7c.branch_pool.conv.weight, net.Mixed_7c.branch_pool.conv.weight)
    # a file of another layout (torchvision's keys under a prefix, as a wrong export would have) is refused
    torch.save({f"model.{k}": v for k, v in state.items()}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match=r"not the FID Inception's state dict: 470 missing .* 472 unexpected"):
        load_fid_inception(tmp_path / "other.pth")
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        load_fid_inception(tmp_path / "absent.pth")


def test_kid_is_unbiased_and_separates_distributions():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(400, 16, generator=g).double(), torch.randn(400, 16, generator=g).double()
    same, _ = kid_from_features(a, b, subsets=50, subset_size=100)
    shifted, _ = kid_from_features(a, b + 0.5, subsets=50, subset_size=100)
    assert abs(same) < 0.05 and shifted > 10 * max(abs(same), 1e-3)
    # one subset of everything equals the closed form of the unbiased MMD^2
    x, y = a[:50], b[:50] + 0.3
    k = lambda u, v: (u @ v.T / 16 + 1) ** 3   # noqa: E731
    expected = ((k(x, x).sum() - k(x, x).trace()) / (50 * 49) + (k(y, y).sum() - k(y, y).trace()) / (50 * 49)
                - 2 * k(x, y).mean())
    assert kid_from_features(x, y, subsets=1, subset_size=50)[0] == pytest.approx(float(expected), rel=1e-9)


def test_clip_score_is_the_clamped_scaled_cosine():
    transformers = pytest.importorskip("transformers")
    from shared.data.tokenizer import train_bpe
    config = transformers.CLIPConfig(
        text_config={"vocab_size": 300, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 16},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8}, projection_dim=16)
    torch.manual_seed(0)
    model = transformers.CLIPModel(config).eval()
    tok = train_bpe([f"a red circle on a blue square number {i}" for i in range(50)], 300, show_progress=False)
    images = torch.rand(3, 3, 40, 40) * 2 - 1
    captions = ["a red circle", "a blue square", "a red square on a blue circle"]
    score = clip_score(model, tok, images, captions, batch_size=2)
    with torch.no_grad():
        pixels = torch.nn.functional.interpolate((images + 1) / 2, size=(32, 32), mode="bicubic").clamp(0, 1)
        mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
        std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
        img = model.get_image_features(pixel_values=(pixels - mean) / std)
        img = img if isinstance(img, torch.Tensor) else img.pooler_output
        per = []
        for i, c in enumerate(captions):
            t = tok([c], return_tensors="pt")
            txt = model.get_text_features(input_ids=t["input_ids"], attention_mask=t["attention_mask"])
            txt = txt if isinstance(txt, torch.Tensor) else txt.pooler_output
            per.append(max(100 * float(torch.nn.functional.cosine_similarity(img[i:i + 1], txt)), 0.0))
    assert score == pytest.approx(float(np.mean(per)), abs=1e-4)
    with pytest.raises(ValueError, match="3 images but 2 captions"):
        clip_score(model, tok, images, captions[:2])
