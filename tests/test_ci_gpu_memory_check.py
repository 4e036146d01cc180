"""ci/gpu_memory_check.py: its CPU run (no measurement there) and the verdict it gives on a GPU; the GPU
scripts run on a Python that has torch and transformers and nothing else."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import load_ci_module

REPO = Path(__file__).resolve().parents[1]

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


# ------------------------------------------------------------- a GPU machine with torch and transformers only
def _torch_and_transformers_site(folder: Path) -> Path:
    """A folder of links to torch, transformers and the packages they require (extras left out): the
    Python a lent GPU machine has, with nothing else of this project's environment."""
    from importlib import metadata

    todo, seen = ["torch", "transformers"], set()
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        todo += [re.split(r"[\s;<>=!~\[(]", req, maxsplit=1)[0] for req in dist.requires or []
                 if "extra ==" not in req]
        for f in dist.files or []:
            top = f.parts[0]
            if top.endswith(".pth") or top in ("..", "__pycache__") or top.endswith(".data"):
                continue                         # the .dist-info folders stay: transformers reads versions there
            target = Path(f.locate()).parents[len(f.parts) - 1] / top
            link = folder / top
            if target.exists() and not link.exists():
                link.symlink_to(target)
    return folder


@pytest.mark.parametrize("script, args", [
    ("ci/gpu_memory_check.py", ["--device", "cpu", "--small", "--layers", "1", "--steps", "1", "--json"]),
    ("ci/gpu_steps.py", ["--device", "cpu", "--small", "--steps", "2", "--stack", "decoder", "--stack", "encoder"]),
    ("ci/compile_check.py", ["--device", "cpu"]),           # without diffusers it skips itself
])
def test_gpu_scripts_need_only_torch_and_transformers(script, args, tmp_path):
    site = _torch_and_transformers_site(tmp_path)
    for missing in ("pandas", "matplotlib", "lm_eval", "papermill", "peft", "diffusers", "seaborn"):
        assert not (site / missing).exists(), missing
    code = ("import runpy, sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]; sys.argv = sys.argv[3:]; "
            "runpy.run_path(sys.argv[0], run_name='__main__')")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-S", "-c", code, str(site), str(REPO), str(REPO / script), *args],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
