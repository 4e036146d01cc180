"""What produced a result: code version, parameters, package versions, device, wall time."""
from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path

from shared.eval.sandbox import isolation_used

REPO_ROOT = Path(__file__).resolve().parents[2]

TRACKED_PACKAGES = ("torch", "numpy", "scipy", "pandas", "matplotlib", "seaborn", "transformers", "tokenizers",
                    "peft", "diffusers", "safetensors", "scikit-learn", "papermill", "flash-attn")


def git_state(root: Path = REPO_ROOT) -> dict:
    """Commit hash and whether the work tree had uncommitted changes (None outside a git checkout)."""
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def claims_ledger_digest(paper: str, papers_dir: Path = REPO_ROOT / "papers") -> str | None:
    """The first 16 hex digits of the sha256 of the paper README's ``## Claims`` table (its lines, each stripped),
    so a run records which claims, kinds and thresholds were in force when it ran (None without that table)."""
    readme = Path(papers_dir) / paper / "README.md"
    try:
        lines = readme.read_text().splitlines()
    except OSError:
        return None
    starts = [i for i, line in enumerate(lines) if line.strip().lower() == "## claims"]
    if not starts:
        return None
    table = []
    for line in lines[starts[0] + 1:]:
        if line.startswith("## "):
            break
        if line.strip().startswith("|"):
            table.append(line.strip())
        elif table and line.strip():
            break
    return hashlib.sha256("\n".join(table).encode()).hexdigest()[:16] if table else None


def package_versions(names=TRACKED_PACKAGES) -> dict:
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def device_info() -> dict:
    info = {"platform": platform.platform(), "processor": _cpu_name(), "cpu_count": os.cpu_count(),
            "torch_threads": None, "cuda": None}
    try:
        import torch
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["cuda"] = {"device_count": torch.cuda.device_count(),
                            "name": torch.cuda.get_device_name(0),
                            "cuda_version": torch.version.cuda}
    except ImportError:
        pass
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def collect(params: dict, config: dict) -> dict:
    """Provenance of a run; ``sandbox`` (when model-written programs ran in this process) says which
    isolation layers they ran under, so a fallback to weaker isolation is visible in the results."""
    prov = {"git": git_state(), "params": params, "config": config, "python": sys.version.split()[0],
            "packages": package_versions(), "device": device_info(),
            "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "HF_HUB_OFFLINE", "CI")}}
    sandbox = isolation_used()
    if sandbox is not None:
        prov["sandbox"] = sandbox
    return prov
