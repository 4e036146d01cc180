"""The sources work on the other CPython versions pyproject.toml allows, not only the one in .venv.

For every other CPython 3.10+ interpreter found on this machine (python3.X on PATH, pyenv's
versions, or the paths listed in the environment variable OTHER_PYTHONS, separated by os.pathsep):
- every source file of shared/, papers/, ci/ and tests/ byte-compiles with it;
- the stdlib-only layer (shared.utils.config) imports and builds a strict config with it;
- where that interpreter has numpy and scipy, shared.scaling imports and solves a Chinchilla
  allocation with it (skipped, with the reason, where they are not installed: installing them takes
  minutes, e.g. ``python3.12 -m venv /tmp/py312 && /tmp/py312/bin/pip install numpy scipy`` and
  ``OTHER_PYTHONS=/tmp/py312/bin/python``).
Each check runs in a subprocess and takes seconds; with no other interpreter the tests skip and say so.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCE_DIRS = ("shared", "papers", "ci", "tests")
MINORS = (10, 11, 12, 13, 14)          # CPython 3.10+ (pyproject: requires-python = ">=3.10")


def _version(python: str) -> tuple[int, int] | None:
    """(major, minor) of a working interpreter, or None (a pyenv shim without that version fails)."""
    try:
        out = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True,
                             text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    major, minor = out.stdout.split()
    return int(major), int(minor)


def other_interpreters() -> dict[str, str]:
    """{"3.X": path} of one working interpreter per CPython minor version other than the running one."""
    candidates = [p for p in os.environ.get("OTHER_PYTHONS", "").split(os.pathsep) if p]
    for minor in MINORS:
        candidates += sorted(glob.glob(str(Path.home() / f".pyenv/versions/3.{minor}.*/bin/python3.{minor}")))
        found = shutil.which(f"python3.{minor}")
        if found:
            candidates.append(found)
    here = sys.version_info[:2]
    chosen: dict[str, str] = {}
    for python in candidates:
        version = _version(python)
        if version is None or version == here or version[0] != 3 or version[1] < MINORS[0]:
            continue
        chosen.setdefault(f"{version[0]}.{version[1]}", python)
    return chosen


INTERPRETERS = other_interpreters()
PARAMS = sorted(INTERPRETERS.items()) or [pytest.param(None, None, marks=pytest.mark.skip(
    reason="no other CPython 3.10+ interpreter found (set OTHER_PYTHONS to check one)"))]


def _run(python: str, code: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120, **kwargs)


@pytest.mark.parametrize("version,python", PARAMS)
def test_sources_byte_compile(version, python, tmp_path):
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(tmp_path / "pycache")}   # the tree stays clean
    out = subprocess.run([python, "-m", "compileall", "-q", *SOURCE_DIRS], capture_output=True, text=True,
                         cwd=REPO, env=env, timeout=300)
    assert out.returncode == 0, f"Python {version} cannot compile:\n{out.stdout}\n{out.stderr}"


@pytest.mark.parametrize("version,python", PARAMS)
def test_stdlib_only_layer_imports(version, python):
    # Loaded by path: shared/utils/config.py needs only the standard library, whatever its package imports.
    code = """
import dataclasses, importlib.util, sys
spec = importlib.util.spec_from_file_location("strict_config", "shared/utils/config.py")
config = importlib.util.module_from_spec(spec)
sys.modules["strict_config"] = config
spec.loader.exec_module(config)

@dataclasses.dataclass
class Inner(config.StrictConfig):
    sizes: tuple[int, ...] = ()

@dataclasses.dataclass
class Outer(config.StrictConfig):
    name: str = ""
    inner: Inner = dataclasses.field(default_factory=Inner)
    limit: int | None = None

spec = Outer.from_dict({"name": "x", "inner": {"sizes": [1, 2]}, "limit": 3})
assert spec.inner.sizes == (1, 2) and spec.to_dict()["limit"] == 3, spec
try:
    Outer.from_dict({"nmae": "x"})
except ValueError:
    pass
else:
    raise AssertionError("an unknown key was accepted")
"""
    out = _run(python, code)
    assert out.returncode == 0, f"Python {version}:\n{out.stderr}"


@pytest.mark.parametrize("version,python", PARAMS)
def test_scaling_layer_imports_where_numpy_is_installed(version, python):
    if _run(python, "import numpy, scipy").returncode != 0:
        pytest.skip(f"Python {version} at {python} has no numpy/scipy (see the module docstring to add them)")
    code = """
import sys
sys.path.insert(0, ".")
from shared.scaling import chinchilla_for_compute
allocation = chinchilla_for_compute(1e21)
assert allocation.params > 0 and allocation.train_tokens > 0, allocation
"""
    out = _run(python, code)
    assert out.returncode == 0, f"Python {version}:\n{out.stderr}"
