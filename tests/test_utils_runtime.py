"""The one copy of each small utility: seeding, the default device, vocabulary padding."""
import random

import numpy as np
import torch

from shared.models.vocab import VOCAB_MULTIPLE, padded_vocab_size
from shared.utils.runtime import default_device, seed_everything


def _draws():
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def test_seed_everything_repeats_every_rng():
    seed_everything(3)
    first = _draws()
    seed_everything(3)
    assert _draws() == first
    seed_everything(2**32 + 3)          # numpy's seed range is folded, not refused
    assert _draws()[1] == first[1]


def test_default_device_honours_an_explicit_choice():
    assert default_device("cpu") == torch.device("cpu")
    assert default_device(torch.device("meta")) == torch.device("meta")
    assert default_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_padded_vocab_size_rounds_up_to_the_multiple():
    assert VOCAB_MULTIPLE == 64
    assert [padded_vocab_size(v) for v in (1, 64, 65, 50257)] == [64, 64, 128, 50304]
    assert padded_vocab_size(10, multiple=8) == 16
