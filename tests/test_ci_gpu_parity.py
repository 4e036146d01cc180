"""ci/gpu_parity.py: runs on CPU, skips only what the dispatch declares unavailable, fails on errors."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "ci" / "gpu_parity.py"


@pytest.fixture(scope="module")
def parity():
    spec = importlib.util.spec_from_file_location("gpu_parity", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cpu_run_agrees(parity, capsys, one_torch_thread):
    assert parity.main(["--device", "cpu"]) == 0
    assert "all agree" in capsys.readouterr().out


def test_an_unexpected_error_is_a_failure_not_a_skip(parity, monkeypatch, capsys, one_torch_thread):
    def broken(*args, **kwargs):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(parity, "check_varlen", broken)
    assert parity.main(["--device", "cpu"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "error: RuntimeError" in out and "mismatches" in out
