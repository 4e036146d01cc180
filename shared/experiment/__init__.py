"""Experiment plumbing shared by every notebook: parameters, scale presets, results, figures.

    from shared.experiment import start_run
    run = start_run(paper, notebook, params=dict(scale=scale, seed=seed, ...), presets=PRESETS)
    cfg = run.config; run.save_figure(fig, "name"); run.log_metrics({...}); run.claim(...); run.finish()

Parameters and presets import eagerly; runs, ledgers and figures (which need matplotlib) load on first
use, so a full preset can be read on a machine that has only torch and transformers (ci/gpu_check.sh).
"""
import importlib

from shared.utils.io import read_json, to_jsonable, write_json_atomic, write_text_atomic

from .params import SCALES, ParameterError, resolve_config, validate_params
from .presets import PRESET_KEY_SYNONYMS, NotebookPresets, synonym_keys

# name -> submodule defining it, imported when the name is first read
_LAZY = {"LedgerRow": "ledger", "read_ledger": "ledger",
         "OURS_STYLE": "plotting", "PAPER_STYLE": "plotting", "save_figure": "plotting", "set_theme": "plotting",
         "RUNS_DIR": "run", "Claim": "run", "Run": "run", "seed_everything": "run", "start_run": "run"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["SCALES", "ParameterError", "validate_params", "resolve_config", "start_run", "Run", "Claim",
           "seed_everything", "save_figure", "set_theme", "PAPER_STYLE", "OURS_STYLE", "write_json_atomic",
           "write_text_atomic", "read_json", "to_jsonable", "RUNS_DIR", "read_ledger", "LedgerRow",
           "NotebookPresets", "PRESET_KEY_SYNONYMS", "synonym_keys"]
