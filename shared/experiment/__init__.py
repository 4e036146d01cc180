"""Experiment plumbing shared by every notebook: parameters, scale presets, results, figures.

    from shared.experiment import start_run
    run = start_run(paper, notebook, params=dict(scale=scale, seed=seed, ...), presets=PRESETS)
    cfg = run.config; run.save_figure(fig, "name"); run.log_metrics({...}); run.claim(...); run.finish()
"""
from shared.utils.io import read_json, to_jsonable, write_json_atomic, write_text_atomic

from .ledger import LedgerRow, read_ledger
from .params import SCALES, ParameterError, resolve_config, validate_params
from .plotting import OURS_STYLE, PAPER_STYLE, save_figure, set_theme
from .presets import PRESET_KEY_SYNONYMS, NotebookPresets, synonym_keys
from .run import RUNS_DIR, Claim, Run, seed_everything, start_run

__all__ = ["SCALES", "ParameterError", "validate_params", "resolve_config", "start_run", "Run", "Claim",
           "seed_everything", "save_figure", "set_theme", "PAPER_STYLE", "OURS_STYLE", "write_json_atomic",
           "write_text_atomic", "read_json", "to_jsonable", "RUNS_DIR", "read_ledger", "LedgerRow",
           "NotebookPresets", "PRESET_KEY_SYNONYMS", "synonym_keys"]
