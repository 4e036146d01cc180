"""Small image classifiers that the science-of-deep-learning papers compare, sized by config.

Families (names follow open_lth, which Kwok et al. 2024 train with):
    mlp     fully connected, e.g. open_lth's `cifar_lenet_1024_512_128` (hidden 1024, 512, 128)
    lenet   LeNet-style CNN: conv-relu-maxpool blocks, then fully connected layers
    resnet  CIFAR ResNet (He et al. 2016, sec. 4.2): 3 stages of `blocks` basic blocks, widths
            w, 2w, 4w, strides 1, 2, 2; depth 6 * blocks + 2 (ResNet-20: blocks=3, width=16)
    vgg     CIFAR VGG: 3x3 conv-BN-ReLU layers with max pools ("M"), global average pool, linear
            (VGG-16: 64,64,M,128,128,M,256,256,256,M,512,512,512,M,512,512,512)

Every model maps images x [B, C, H, W] to `ModelOutput(logits [B, num_classes], loss None)`
(shared.models.output) and exposes `intermediates(x) -> list of tensors [B, ...]`: the
representation after each block, input side first, logits last. Prediction depth (Baldock et al. 2021) probes these with k-nearest neighbours.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from shared.models.output import ModelOutput

ARCHS = ("mlp", "lenet", "resnet", "vgg")


@dataclass
class VisionConfig:
    """Shape of one small image classifier.

    arch: one of ARCHS. in_channels, image_size, num_classes describe the data.
    mlp:    hidden = widths of the hidden layers.
    lenet:  channels = conv widths (one conv + 2x2 max pool per entry), hidden = fc widths.
    resnet: width = channels of the first stage, blocks = basic blocks per stage.
    vgg:    vgg_layers = conv widths and "M" (2x2 max pool).
    """

    arch: str = "mlp"
    in_channels: int = 1
    image_size: int = 8
    num_classes: int = 10
    hidden: tuple[int, ...] = (128, 64)
    channels: tuple[int, ...] = (16, 32)
    width: int = 16
    blocks: int = 3
    vgg_layers: tuple = (16, "M", 32, "M", 64)
    batch_norm: bool = True

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"arch={self.arch!r} is not valid; choose one of {list(ARCHS)}")
        self.hidden, self.channels, self.vgg_layers = tuple(self.hidden), tuple(self.channels), tuple(self.vgg_layers)
        for name in ("in_channels", "image_size", "num_classes", "width", "blocks"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.arch == "lenet" and self.image_size // 2 ** len(self.channels) < 1:
            raise ValueError(f"image_size {self.image_size} is too small for {len(self.channels)} conv+pool blocks")
        if self.arch == "vgg":
            pools = sum(1 for v in self.vgg_layers if v == "M")
            if self.image_size // 2 ** pools < 1:
                raise ValueError(f"image_size {self.image_size} is too small for {pools} max pools")
            if not any(isinstance(v, int) for v in self.vgg_layers):
                raise ValueError("vgg_layers needs at least one conv width")


class MLP(nn.Module):
    """Flatten, then Linear-ReLU per hidden width, then a linear classifier."""

    def __init__(self, cfg: VisionConfig):
        super().__init__()
        dims = [cfg.in_channels * cfg.image_size ** 2, *cfg.hidden]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.head = nn.Linear(dims[-1], cfg.num_classes)

    def intermediates(self, x: torch.Tensor) -> list[torch.Tensor]:
        """x (B, C, H, W) -> [(B, hidden_i) per hidden layer..., logits (B, num_classes)]."""
        h, out = x.flatten(1), []
        for layer in self.layers:
            h = F.relu(layer(h))
            out.append(h)
        out.append(self.head(h))
        return out

    def forward(self, x: torch.Tensor) -> ModelOutput:
        """x (B, C, H, W) -> ModelOutput(logits (B, num_classes), loss None)."""
        return ModelOutput(self.intermediates(x)[-1], None)


class LeNet(nn.Module):
    """Conv(3x3, same)-ReLU-MaxPool(2) per conv width, flatten, Linear-ReLU per hidden width, linear."""

    def __init__(self, cfg: VisionConfig):
        super().__init__()
        chans = [cfg.in_channels, *cfg.channels]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, padding=1) for a, b in zip(chans[:-1], chans[1:]))
        side = cfg.image_size // 2 ** len(cfg.channels)
        dims = [chans[-1] * side * side, *cfg.hidden]
        self.fcs = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.head = nn.Linear(dims[-1], cfg.num_classes)

    def intermediates(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for conv in self.convs:
            x = F.max_pool2d(F.relu(conv(x)), 2)
            out.append(x)
        x = x.flatten(1)
        for fc in self.fcs:
            x = F.relu(fc(x))
            out.append(x)
        out.append(self.head(x))
        return out

    def forward(self, x: torch.Tensor) -> ModelOutput:
        """x (B, C, H, W) -> ModelOutput(logits (B, num_classes), loss None)."""
        return ModelOutput(self.intermediates(x)[-1], None)


def _norm(channels: int, batch_norm: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if batch_norm else nn.Identity()


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual; a 1x1 conv shortcut when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int, batch_norm: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=not batch_norm)
        self.bn1 = _norm(c_out, batch_norm)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=not batch_norm)
        self.bn2 = _norm(c_out, batch_norm)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=not batch_norm),
                                          _norm(c_out, batch_norm))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, c_in, H, W) -> (B, c_out, H / stride, W / stride)."""
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + self.shortcut(x))


class CifarResNet(nn.Module):
    """Stem conv, 3 stages of basic blocks (widths w, 2w, 4w; strides 1, 2, 2), global avg pool, linear."""

    def __init__(self, cfg: VisionConfig):
        super().__init__()
        w = cfg.width
        self.stem = nn.Sequential(nn.Conv2d(cfg.in_channels, w, 3, padding=1, bias=not cfg.batch_norm),
                                  _norm(w, cfg.batch_norm), nn.ReLU())
        blocks, c_in = [], w
        for stage, c_out in enumerate((w, 2 * w, 4 * w)):
            for i in range(cfg.blocks):
                blocks.append(BasicBlock(c_in, c_out, 2 if (stage > 0 and i == 0) else 1, cfg.batch_norm))
                c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(c_in, cfg.num_classes)

    def intermediates(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        out = [x]
        for block in self.blocks:
            x = block(x)
            out.append(x)
        pooled = x.mean(dim=(2, 3))
        out.append(self.head(pooled))
        return out

    def forward(self, x: torch.Tensor) -> ModelOutput:
        """x (B, C, H, W) -> ModelOutput(logits (B, num_classes), loss None)."""
        return ModelOutput(self.intermediates(x)[-1], None)


class CifarVGG(nn.Module):
    """3x3 conv-BN-ReLU layers and 2x2 max pools as listed, global average pool, linear."""

    def __init__(self, cfg: VisionConfig):
        super().__init__()
        layers, c_in = [], cfg.in_channels
        for v in cfg.vgg_layers:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers.append(nn.Sequential(nn.Conv2d(c_in, int(v), 3, padding=1, bias=not cfg.batch_norm),
                                            _norm(int(v), cfg.batch_norm), nn.ReLU()))
                c_in = int(v)
        self.features = nn.ModuleList(layers)
        self.head = nn.Linear(c_in, cfg.num_classes)

    def intermediates(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for layer in self.features:
            x = layer(x)
            if not isinstance(layer, nn.MaxPool2d):
                out.append(x)
        out.append(self.head(x.mean(dim=(2, 3))))
        return out

    def forward(self, x: torch.Tensor) -> ModelOutput:
        """x (B, C, H, W) -> ModelOutput(logits (B, num_classes), loss None)."""
        return ModelOutput(self.intermediates(x)[-1], None)


_FAMILIES = {"mlp": MLP, "lenet": LeNet, "resnet": CifarResNet, "vgg": CifarVGG}

# The papers' own configurations, for CIFAR-10 (3x32x32, 10 classes).
PAPER_CONFIGS: dict[str, dict] = {
    "cifar_lenet_1024_512_128": dict(arch="mlp", hidden=(1024, 512, 128)),
    "cifar_lenet_conv": dict(arch="lenet", channels=(32, 64), hidden=(256,)),
    "cifar_resnet_20": dict(arch="resnet", width=16, blocks=3),
    "cifar_vgg_16": dict(arch="vgg", vgg_layers=(64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
                                                 512, 512, 512, "M", 512, 512, 512)),
}


def build_vision_model(cfg: VisionConfig | dict) -> nn.Module:
    """The model described by `cfg` (a VisionConfig or a dict of its fields)."""
    if isinstance(cfg, dict):
        cfg = VisionConfig(**cfg)
    return _FAMILIES[cfg.arch](cfg)


def paper_config(name: str, **overrides) -> VisionConfig:
    """A named configuration from PAPER_CONFIGS (CIFAR-10 shapes), with fields overridden."""
    if name not in PAPER_CONFIGS:
        raise ValueError(f"unknown paper config {name!r}; choose one of {sorted(PAPER_CONFIGS)}")
    return VisionConfig(**{"in_channels": 3, "image_size": 32, "num_classes": 10, **PAPER_CONFIGS[name], **overrides})


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def forward_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates x 2 of one forward pass of one example of shape `input_shape` (C, H, W),
    counted over Linear and Conv2d layers (the rest is negligible for these models)."""
    flops = 0

    def hook(module, inputs, output):
        nonlocal flops
        if isinstance(module, nn.Linear):
            flops += 2 * module.in_features * module.out_features
        elif isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            flops += 2 * k * output.shape[1] * output.shape[2] * output.shape[3]

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return flops
