"""Process-wide runtime helpers: seeding every RNG, and the device a process should use."""
from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) RNGs."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def default_device(device: str | torch.device | None = None) -> torch.device:
    """`device` if given; else cuda:LOCAL_RANK when CUDA is available, else cpu."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


__all__ = ["default_device", "seed_everything"]
