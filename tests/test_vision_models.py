"""shared.models.vision: every family builds from config, maps images to logits, exposes its layer
representations, and rejects bad configs; the paper configs have the published sizes."""
import pytest
import torch

from shared.models.vision import (ARCHS, VisionConfig, build_vision_model, count_parameters, forward_flops,
                                  paper_config)

SMALL = {"mlp": dict(hidden=(16, 8)), "lenet": dict(channels=(4, 8), hidden=(8,)),
         "resnet": dict(width=4, blocks=1), "vgg": dict(vgg_layers=(4, "M", 8))}


@pytest.mark.parametrize("arch", ARCHS)
def test_logits_and_intermediates(arch):
    torch.manual_seed(0)
    model = build_vision_model(VisionConfig(arch=arch, in_channels=3, image_size=8, num_classes=5, **SMALL[arch]))
    x = torch.randn(6, 3, 8, 8)
    model.eval()
    out = model(x)
    logits = out.logits
    assert logits.shape == (6, 5) and out.loss is None
    reps = model.intermediates(x)
    assert len(reps) >= 2 and all(r.shape[0] == 6 for r in reps)
    assert torch.allclose(reps[-1], logits)
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_resnet20_and_vgg16_sizes():
    # ResNet-20 for CIFAR-10 has ~0.27M parameters (He et al. 2016, Table 6); VGG-16 (CIFAR, no big fc) ~14.7M.
    r20 = build_vision_model(paper_config("cifar_resnet_20"))
    assert 265_000 < count_parameters(r20) < 280_000
    depth = 1 + 2 * len(r20.blocks) + 1  # stem conv + two convs per block + the linear head
    assert depth == 20
    vgg = build_vision_model(paper_config("cifar_vgg_16"))
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in vgg.modules())
    assert convs == 13 and 14_500_000 < count_parameters(vgg) < 15_100_000
    mlp = build_vision_model(paper_config("cifar_lenet_1024_512_128"))
    assert count_parameters(mlp) == 3072 * 1024 + 1024 + 1024 * 512 + 512 + 512 * 128 + 128 + 128 * 10 + 10


def test_forward_flops_of_an_mlp_is_exact():
    model = build_vision_model(VisionConfig(arch="mlp", in_channels=1, image_size=4, num_classes=3, hidden=(5,)))
    assert forward_flops(model, (1, 4, 4)) == 2 * (16 * 5 + 5 * 3)


@pytest.mark.parametrize("bad, match", [(dict(arch="transformer"), "arch"), (dict(arch="lenet", image_size=2, channels=(4, 8)), "too small"),
                                        (dict(width=0), "width"), (dict(arch="vgg", vgg_layers=("M",)), "conv width")])
def test_bad_configs_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        VisionConfig(**bad)


def test_unknown_paper_config_names_the_choices():
    with pytest.raises(ValueError, match="cifar_resnet_20"):
        paper_config("resnet50")
