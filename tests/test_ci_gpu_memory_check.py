"""ci/gpu_memory_check.py: its CPU run (no measurement there) and the verdict it gives on a GPU."""
from __future__ import annotations

from conftest import load_ci_module

memcheck = load_ci_module("gpu_memory_check")


def test_cpu_run_trains_the_full_presets_family_and_prints_the_estimate(one_torch_thread):
    out = memcheck.check("domain_upsampling", "01_train", layers=2, steps=2, device="cpu", small=True,
                         tolerance=0.15)
    assert out["layers"] == 2 and len(out["losses"]) == 2
    assert out["activation_checkpointing"] is True            # the full preset's switch, kept as it is
    assert out["estimate_gib"]["total"] > 0 and out["passed"] is None


def test_under_estimates_fail_and_over_estimates_pass():
    assert memcheck.verdict(120, 100, 0.15)["passed"] is False
    assert memcheck.verdict(110, 100, 0.15)["passed"] is True
    assert memcheck.verdict(50, 100, 0.15) == {"measured_gib": round(50 / 2**30, 3), "ratio": 0.5,
                                              "tolerance": 0.15, "passed": True}
