"""A notebook run: validated parameters, its scale's config, and the results files it writes.

Layout of ``out_dir`` (default ``runs/<scale>/<paper>/<notebook>/``)::

    figures/<name>.png|.svg   every figure the notebook shows
    metrics.json              every number a figure or table shows
    claims.json               the paper's sentences made checkable, with ``holds`` computed
    provenance.json           commit, the claims ledger's digest, parameters, versions, device, wall time (written at
                              start, completed at finish)
    tables/<name>.csv|.md     tables shown beside the paper's
"""
from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from shared.preflight import PreflightError, World, format_report, preflight
from shared.utils.io import read_json, to_jsonable, write_json_atomic, write_text_atomic
from shared.utils.runtime import seed_everything

from . import provenance
from .params import ParameterError, resolve_config, validate_params
from .plotting import save_figure, set_theme
from .presets import NotebookPresets

RUNS_DIR = provenance.REPO_ROOT / "runs"


CLAIM_KINDS = ("paper", "method", "sanity")


@dataclass
class Claim:
    """A statement made checkable, with ``holds`` computed from measured values.

    ``kind``: ``paper`` (a sentence of the paper: its outcome is evidence for or against it),
    ``method`` (our instrument works: a metric, solver or pipeline reproduces a known answer) or
    ``sanity`` (true by construction of the smoke world; a guard that the run did what it says, no evidence).
    ``central``: the paper's headline claim(s) (only ``paper`` claims). ``threshold``: the rule that
    decides ``holds`` and where its numbers come from (the paper, or seed spread measured apart).
    ``holds`` is True / False when measured at this scale, None when not testable at this scale.
    """
    id: str
    statement: str
    paper_value: Any
    ours: Any
    holds: bool | None
    scale: str
    kind: str = "paper"
    central: bool = False
    threshold: str = ""
    note: str = ""
    source: str = ""          # where in the paper the statement / number comes from

    @property
    def status(self) -> str:
        return {True: "holds", False: "fails", None: "not testable at this scale"}[self.holds]


@dataclass
class Run:
    paper: str
    notebook: str
    params: dict
    config: dict
    out_dir: Path
    started: float = field(default_factory=time.time)
    claims: dict[str, Claim] = field(default_factory=dict)
    spec: Any = None          # the typed config (NotebookPresets.spec) built from ``config``, if any

    @property
    def scale(self) -> str:
        return self.params["scale"]

    @property
    def seed(self) -> int:
        return self.params["seed"]

    def sibling_dir(self, notebook: str, must_exist: bool = True) -> Path:
        """The out_dir of another notebook of this paper in this run (e.g. a "01_pretrain" notebook
        whose checkpoint a "02_finetune" notebook reads). The runner runs lower NN_ prefixes first."""
        path = self.out_dir.parent / notebook
        if must_exist and not (path / "provenance.json").exists():
            raise FileNotFoundError(f"{self.paper}/{notebook} has no results at {path}; run that notebook first "
                                    f"(python ci/run_notebooks.py --scale {self.scale} --paper {self.paper})")
        return path

    # results ---------------------------------------------------------------------------------
    def log_metrics(self, metrics: Mapping[str, Any]) -> dict:
        """Merge ``metrics`` into metrics.json (written atomically); returns the merged dict."""
        path = self.out_dir / "metrics.json"
        merged = read_json(path, default={})
        merged.update(to_jsonable(dict(metrics)))
        write_json_atomic(path, merged)
        return merged

    def claim(self, id: str, statement: str, paper_value: Any, ours: Any, holds: Any, *, kind: str,
              central: bool = False, threshold: str = "", note: str = "", source: str = "") -> Claim:
        """Record a claim; ``holds`` must be computed from measured values (bool) or None.

        ``kind`` is one of CLAIM_KINDS (see Claim); ``central`` marks the paper's headline claim(s);
        ``threshold`` states the rule behind ``holds`` and its source.
        """
        if holds is not None:
            if isinstance(holds, np.bool_):
                holds = bool(holds)
            if not isinstance(holds, bool):
                raise TypeError(f"claim {id!r}: holds must be a bool computed from numbers, or None; got {holds!r}")
        if kind not in CLAIM_KINDS:
            raise ValueError(f"claim {id!r}: kind must be one of {CLAIM_KINDS}, got {kind!r}")
        if central and kind != "paper":
            raise ValueError(f"claim {id!r}: only a 'paper' claim can be central (got kind {kind!r})")
        c = Claim(id=id, statement=statement, paper_value=to_jsonable(paper_value), ours=to_jsonable(ours),
                  holds=holds, scale=self.scale, kind=kind, central=bool(central), threshold=threshold, note=note,
                  source=source)
        self.claims[id] = c
        write_json_atomic(self.out_dir / "claims.json", [asdict(x) | {"status": x.status} for x in self.claims.values()])
        return c

    def save_figure(self, fig, name: str) -> list[Path]:
        """Save a matplotlib figure as figures/<name>.png and .svg."""
        return save_figure(fig, self.out_dir / "figures" / name)

    def save_table(self, df, name: str) -> Path:
        """Save a pandas DataFrame as tables/<name>.csv and a markdown copy; returns the CSV path."""
        path = self.out_dir / "tables" / f"{name}.csv"
        write_text_atomic(path, df.to_csv(index=False))
        write_text_atomic(path.with_suffix(".md"), df.to_markdown(index=False) if _has_tabulate() else df.to_string(index=False))
        return path

    def finish(self) -> dict:
        """Complete provenance.json with the wall time; returns a summary of the claims.

        claims.json and metrics.json always exist after finish (empty when nothing was recorded).
        """
        if not (self.out_dir / "claims.json").exists():
            write_json_atomic(self.out_dir / "claims.json", [])
        if not (self.out_dir / "metrics.json").exists():
            write_json_atomic(self.out_dir / "metrics.json", {})
        self._write_provenance(status="finished")
        counts = {s: sum(c.status == s for c in self.claims.values())
                  for s in ("holds", "fails", "not testable at this scale")}
        print(f"{self.paper}/{self.notebook} [{self.scale}]: {len(self.claims)} claims: "
              + ", ".join(f"{n} {s}" for s, n in counts.items()) + f"; wall {time.time() - self.started:.1f} s"
              + f"; results in {self.out_dir}")
        return counts

    def _write_provenance(self, status: str) -> None:
        prov = provenance.collect(self.params, self.config)
        prov.update({"paper": self.paper, "notebook": self.notebook, "scale": self.scale, "seed": self.seed,
                     "claims_ledger": provenance.claims_ledger_digest(self.paper), "status": status,
                     "started_utc": datetime.fromtimestamp(self.started, timezone.utc).isoformat(timespec="seconds"),
                     "wall_time_s": round(time.time() - self.started, 3)})
        write_json_atomic(self.out_dir / "provenance.json", prov)


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
        return True
    except ImportError:
        return False


def set_launch_environment(params: Mapping[str, Any]) -> None:
    """Hand the notebook's launch parameters to shared.train's launcher (SHARED_RDZV_ENDPOINT,
    SHARED_LAUNCHER), clearing values an earlier notebook in this kernel may have left."""
    for var, value in (("SHARED_RDZV_ENDPOINT", params.get("rdzv_endpoint")), ("SHARED_LAUNCHER", params.get("launcher"))):
        if value in (None, "local"):
            os.environ.pop(var, None)
        else:
            os.environ[var] = str(value)


def detected_gpu() -> str | None:
    """The preflight catalogue name of this machine's first CUDA device ($SHARED_GPU overrides), or None."""
    if os.environ.get("SHARED_GPU"):
        return os.environ["SHARED_GPU"]
    if not torch.cuda.is_available():
        return None
    name, memory = torch.cuda.get_device_name(0).upper(), torch.cuda.get_device_properties(0).total_memory
    for key, card in (("H200", "h200-141gb"), ("H100", "h100-80gb")):
        if key in name:
            return card
    if "A100" in name:
        return "a100-80gb" if memory > 60e9 else "a100-40gb"
    return None


def full_scale_preflight(paper: str, notebook: str, params: Mapping[str, Any], out_dir: Path) -> dict:
    """Size every training run of this notebook's full preset before any heavy work
    (``shared.preflight``), write ``out_dir/preflight.json``, and raise PreflightError listing every
    reason the run would fail later. Memory is checked against this machine's GPU (or $SHARED_GPU);
    without a known GPU (a CPU rehearsal) only batch and data errors count."""
    gpu = detected_gpu()
    world = World(nproc_per_node=params["nproc_per_node"], nnodes=params["nnodes"])
    report = preflight(paper, [notebook], scale="full", world=world, gpu=gpu or "h100-80gb",
                       data_dir=params.get("data_dir"), overrides=params.get("overrides"))
    report["memory_checked"] = gpu is not None
    if gpu is None:        # no card to size memory against: drop the memory verdicts
        report["errors"] = [e for e in report["errors"] if "GiB per GPU >" not in e]
    write_json_atomic(out_dir / "preflight.json", report)
    print(format_report(report))
    if report["errors"]:
        raise PreflightError(f"preflight of {paper}/{notebook} found {len(report['errors'])} error(s):\n  "
                             + "\n  ".join(report["errors"]))
    return report


def start_run(paper: str, notebook: str, params: Mapping[str, Any],
              presets: NotebookPresets | Mapping[str, Mapping[str, Any]], extra_params: Mapping[str, tuple[type, ...]] | None = None,
              theme: bool = True, preflight_full: bool = True) -> Run:
    """Validate ``params``, pick the scale's preset, create out_dir, seed, set the plot theme.

    ``params`` holds the notebook's parameters cell (scale, seed, out_dir, nproc_per_node, nnodes,
    data_dir, overrides, plus any ``extra_params`` the notebook declares as name -> accepted types).
    ``presets``: a NotebookPresets (then ``run.spec`` is the typed config) or a plain scale -> dict.
    At scale full (with NotebookPresets) the preflight runs first (``full_scale_preflight``) and
    stops the notebook on any error; ``preflight_full=False`` skips it.
    Raises ParameterError (a ValueError) naming the valid choices on bad input.
    """
    params = validate_params(params, extra=extra_params)
    if isinstance(presets, NotebookPresets):
        config = presets.resolve(params["scale"], params["overrides"])
        spec = presets.build_config(config, where=params["scale"])
    else:
        config, spec = resolve_config(presets, params["scale"], params["overrides"]), None
    if params["scale"] == "full" and params.get("data_dir") is None and config.get("needs_data_dir", False):
        raise ParameterError(f"{paper}/{notebook} at scale 'full' needs data_dir (where prepared datasets live)")
    out_dir = Path(params["out_dir"]) if params.get("out_dir") else RUNS_DIR / params["scale"] / paper / notebook
    out_dir.mkdir(parents=True, exist_ok=True)
    if params["scale"] == "full" and preflight_full and isinstance(presets, NotebookPresets):
        full_scale_preflight(paper, notebook, params, out_dir)
    # A fresh run replaces the previous run's claims (stale claims must not survive a rerun).
    for stale in ("claims.json", "metrics.json"):
        (out_dir / stale).unlink(missing_ok=True)
    set_launch_environment(params)
    seed_everything(params["seed"])
    if theme:
        set_theme()
    run = Run(paper=paper, notebook=notebook, params=params, config=config, out_dir=out_dir, spec=spec)
    run._write_provenance(status="running")
    return run


__all__ = ["CLAIM_KINDS", "Claim", "Run", "start_run", "seed_everything", "ParameterError"]
