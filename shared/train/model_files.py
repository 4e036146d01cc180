"""A decoder run's model files beside its checkpoints: ``model.json`` (the GPTConfig) and ``tokenizer/``,
so a run folder can be loaded, evaluated or exported without the pipeline that trained it.

    save_model_files(run_dir, model, tokenizer)
    model, tokenizer = load_pretrained(run_dir)     # latest checkpoint's weights, eval mode
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from shared.data.tokenizer import load_tokenizer
from shared.models.gpt import GPT, GPTConfig

from .checkpoint import latest_checkpoint, load_model_weights

MODEL_FILE = "model.json"
TOKENIZER_DIR = "tokenizer"


def save_model_files(run_dir: str | Path, model: GPT, tokenizer) -> None:
    """Write run_dir/model.json (the GPTConfig) and run_dir/tokenizer/ beside the checkpoints."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(run_dir / TOKENIZER_DIR))
    (run_dir / MODEL_FILE).write_text(json.dumps({"model": dataclasses.asdict(model.cfg)}, indent=1))


def load_pretrained(run_dir: str | Path) -> tuple[GPT, Any]:
    """(model with the latest checkpoint's weights, in eval mode; tokenizer) of a run with model files."""
    run_dir = Path(run_dir)
    meta = run_dir / MODEL_FILE
    if not meta.exists():
        raise FileNotFoundError(f"{meta} not found: not a run exported with 'model_files'")
    model = GPT(GPTConfig(**json.loads(meta.read_text())["model"]))
    ckpt = latest_checkpoint(run_dir)
    if ckpt is None:
        raise FileNotFoundError(f"{run_dir} holds no checkpoint")
    load_model_weights(ckpt, model)
    return model.eval(), load_tokenizer(run_dir / TOKENIZER_DIR)


__all__ = ["MODEL_FILE", "TOKENIZER_DIR", "load_pretrained", "save_model_files"]
