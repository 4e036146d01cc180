"""Where built data lives: a git-ignored cache folder, content hashes for cache keys, atomic writes.

The cache root is `$REPLICATIONS_CACHE` if set, else `<repo>/.cache/data/`. Extracted Debian packages
live in `$REPLICATIONS_DEBS_DIR` if set, else `<repo>/.cache/debs/` (see ci/fetch_offline_data.sh).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


def cache_root() -> Path:
    """The data cache folder (created)."""
    root = Path(os.environ.get("REPLICATIONS_CACHE") or REPO_ROOT / ".cache" / "data")
    root.mkdir(parents=True, exist_ok=True)
    return root


def debs_root() -> Path:
    """Where ci/fetch_offline_data.sh extracts Debian packages (not created here)."""
    return Path(os.environ.get("REPLICATIONS_DEBS_DIR") or REPO_ROOT / ".cache" / "debs")


def stable_hash(obj: Any, length: int = 16) -> str:
    """A hex digest of a JSON-serialisable object, independent of dict order and of the process."""
    text = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


@contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a temporary folder beside `final`; on success it is renamed to `final`.

    A crash leaves no half-written cache entry behind. If another process created `final` meanwhile,
    ours is discarded and theirs kept (both were built from the same key, so they are equal).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        yield tmp
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
