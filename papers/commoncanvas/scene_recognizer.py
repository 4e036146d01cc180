"""A small CNN that reads a scene's attributes (colour, shape, position, count) off its image.

One architecture, three jobs in the CommonCanvas replication, each a separately trained instance:
- the **recognizer** that scores caption consistency (does a generated image show its caption?);
- the **feature network** whose penultimate activations FID compares at smoke scale;
- the **captioner** of "telephoning": trained on a labelled split, it captions an unlabelled one
  (its attribute predictions are written out with the caption template).

    net = SceneRecognizer(RecognizerConfig(num_classes={"colour": 4, "shape": 3, ...}))
    logits = net(images)            # {attribute: (B, n_attribute)}
    feats = net.features(images)    # (B, feature_dim)

Positions matter, so the conv trunk ends in a flatten, not a global pool.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from shared.utils.config import StrictConfig


@dataclass
class RecognizerConfig(StrictConfig):
    image_size: int = 16
    in_channels: int = 3
    channels: tuple[int, ...] = (32, 64)      # one conv-conv-pool stage each
    feature_dim: int = 128
    num_classes: dict[str, int] = field(default_factory=lambda: {"colour": 4, "shape": 3, "position": 4, "count": 2})

    def __post_init__(self) -> None:
        self.channels = tuple(self.channels)
        if self.image_size % 2 ** len(self.channels):
            raise ValueError(f"image_size {self.image_size} must be divisible by 2 ** {len(self.channels)}")
        if not self.num_classes:
            raise ValueError("num_classes needs at least one attribute")


class SceneRecognizer(nn.Module):
    """images (B, C, S, S) in [-1, 1] -> {attribute: logits (B, n)}; features (B, feature_dim)."""

    def __init__(self, cfg: RecognizerConfig):
        super().__init__()
        self.cfg = cfg
        layers, c_in = [], cfg.in_channels
        for c in cfg.channels:
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.GroupNorm(8, c), nn.SiLU(),
                       nn.Conv2d(c, c, 3, padding=1), nn.SiLU(), nn.MaxPool2d(2)]
            c_in = c
        self.trunk = nn.Sequential(*layers)
        side = cfg.image_size // 2 ** len(cfg.channels)
        self.project = nn.Linear(c_in * side * side, cfg.feature_dim)
        self.heads = nn.ModuleDict({a: nn.Linear(cfg.feature_dim, n) for a, n in cfg.num_classes.items()})

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """images (B, C, S, S) -> penultimate features (B, feature_dim)."""
        return F.silu(self.project(self.trunk(x).flatten(1)))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """images (B, C, S, S) -> {attribute: logits (B, n_attribute)}."""
        h = self.features(x)
        return {a: head(h) for a, head in self.heads.items()}

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 512) -> dict[str, torch.Tensor]:
        """Class indices per attribute, (N,) each; eval mode, batched."""
        was = self.training
        self.eval()
        device = next(self.parameters()).device
        out: dict[str, list[torch.Tensor]] = {a: [] for a in self.heads}
        for s in range(0, len(x), batch_size):
            for a, logits in self(x[s:s + batch_size].to(device)).items():
                out[a].append(logits.argmax(-1).cpu())
        self.train(was)
        return {a: torch.cat(v) for a, v in out.items()}


def attribute_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
    """Sum over attributes of the cross-entropy; batch = {"images": (B, C, S, S), attribute: (B,)}.

    A Trainer loss_fn; logs each attribute's batch accuracy.
    """
    logits = model(batch["images"])
    loss = sum(F.cross_entropy(v, batch[a]) for a, v in logits.items())
    metrics = {f"acc_{a}": (v.argmax(-1) == batch[a]).float().mean().detach() for a, v in logits.items()}
    return loss, metrics
