"""Which training runs the full-scale CPU rehearsal preempts (ci/rehearsal.py; `shared.train.trainer.rehearsal_crash`
does the exiting).

With SHARED_REHEARSAL_CRASH=1 every run exits once after its first periodic checkpoint and resumes after its
launcher restarts it. A restart costs a run its workers' start again (about 7 s of a 2-core machine per run),
so a notebook of many runs that differ only in values (learning rates, schedules, tasks of one format) may name
the config keys that make two runs take different code paths through a restart
(SHARED_REHEARSAL_KIND_KEYS, a JSON list of dotted keys, e.g. ["method.method", "task.regime"]): then only the
first run of each kind to reach its checkpoint is preempted, and SHARED_REHEARSAL_KINDS_DIR holds one file per
kind naming that run's folder. No keys: every run is preempted.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

KIND_KEYS_ENV = "SHARED_REHEARSAL_KIND_KEYS"
KINDS_DIR_ENV = "SHARED_REHEARSAL_KINDS_DIR"
CONFIG_FILE = "launch_config.json"          # shared.train.runner / shared.train.jobs write it in a run's folder


def value_at(config: Mapping[str, Any], dotted: str) -> Any:
    """config["a"]["b"] for "a.b"; None where a key is missing or a value on the way is not a mapping."""
    value: Any = config
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def run_kind(config: Mapping[str, Any], keys: Sequence[str]) -> str:
    """The kind of a run: a hash of its config's values at `keys`."""
    values = {key: value_at(config, key) for key in keys}
    return hashlib.sha1(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_config(run_dir: str | Path, up: int = 2) -> dict | None:
    """The launch config of the run in `run_dir`: its CONFIG_FILE, or its parent's (up to `up` levels: a job
    that trains several runs in subfolders of its own); None if there is none."""
    folder = Path(run_dir).resolve()
    for candidate in [folder, *folder.parents][: up + 1]:
        path = candidate / CONFIG_FILE
        if path.is_file():
            try:
                return json.loads(path.read_text())
            except ValueError:
                return None
    return None


def kind_keys(env: Mapping[str, str] | None = None) -> list[str] | None:
    """SHARED_REHEARSAL_KIND_KEYS as a list, None when unset (every run is preempted)."""
    raw = (os.environ if env is None else env).get(KIND_KEYS_ENV)
    if not raw:
        return None
    keys = json.loads(raw)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ValueError(f"{KIND_KEYS_ENV} must be a JSON list of dotted keys, got {raw!r}")
    return keys


def kind_file(run_dir: str | Path, keys: Sequence[str], kinds_dir: str | Path) -> Path | None:
    """The file of this run's kind in `kinds_dir`, or None when the run has no launch config (its own kind)."""
    config = run_config(run_dir)
    return None if config is None else Path(kinds_dir) / run_kind(config, keys)


def claim_kind(run_dir: str | Path, keys: Sequence[str], kinds_dir: str | Path) -> None:
    """Rank 0 of a run that reached its first periodic checkpoint: make it its kind's preempted run, unless an
    earlier run of the kind already is (the file is created exclusively, so concurrent runs agree)."""
    path = kind_file(run_dir, keys, kinds_dir)
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as f:
        f.write(str(Path(run_dir).resolve()))


def preempted_for_kind(run_dir: str | Path, keys: Sequence[str], kinds_dir: str | Path) -> bool:
    """Whether this run is its kind's preempted run (every rank reads the same file after claim_kind)."""
    path = kind_file(run_dir, keys, kinds_dir)
    if path is None:
        return True
    try:
        return path.read_text().strip() == str(Path(run_dir).resolve())
    except OSError:
        return True


__all__ = ["CONFIG_FILE", "KINDS_DIR_ENV", "KIND_KEYS_ENV", "claim_kind", "kind_file", "kind_keys",
           "preempted_for_kind", "run_config", "run_kind", "value_at"]
