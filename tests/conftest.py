"""Test-wide settings (offline hub, quiet tokenizers, a non-interactive plotting backend) and the
fixtures several test files set up the same way.

Fixtures
- ``one_torch_thread`` (module scope): torch runs on one thread for the module. Tiny shapes gain
  nothing from threads, and on a loaded 2-core machine OpenMP barriers stall small matmuls by
  milliseconds each. Use it with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
- ``tiny_gpt`` (session scope): a factory ``tiny_gpt(vocab_size=50, seed=0, **GPTConfig fields)``
  building a seeded one-layer decoder (d_model 32, 2 heads, 64 positions) in train mode.
- ``seeded_generator``: a ``torch.Generator`` seeded with 0, for tests that draw their own data.
- ``run_dir``: the path of a run directory under pytest's ``tmp_path`` (not created: the code
  under test makes it).
"""
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from shared.models.gpt import GPT, GPTConfig

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]

TINY_GPT = dict(vocab_size=50, n_layer=1, n_head=2, d_model=32, max_seq_len=64)


def load_ci_module(name: str):
    """Import a script from ci/ (they are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "ci" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch.set_num_threads(1) for the module, restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_gpt() -> Callable[..., GPT]:
    """Factory: tiny_gpt(vocab_size=50, seed=0, **overrides) -> a freshly initialised GPT; the global
    torch RNG is seeded with ``seed`` right before the model is built, so weights are reproducible."""
    def make(vocab_size: int = TINY_GPT["vocab_size"], seed: int = 0, **overrides) -> GPT:
        torch.manual_seed(seed)
        return GPT(GPTConfig(**{**TINY_GPT, "vocab_size": vocab_size, **overrides}))
    return make


@pytest.fixture
def seeded_generator() -> torch.Generator:
    """A CPU torch.Generator seeded with 0."""
    return torch.Generator().manual_seed(0)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """tmp_path / "run", not yet created."""
    return tmp_path / "run"
