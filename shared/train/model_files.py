"""A decoder run's model files beside its checkpoints: ``model.json`` (the GPTConfig) and ``tokenizer/``,
so a run folder can be loaded, evaluated or exported without the pipeline that trained it.

    save_model_files(run_dir, model, tokenizer)
    model, tokenizer = load_pretrained(run_dir)     # latest checkpoint's weights, eval mode
    model, tokenizer = load_transformers_lm(folder)  # a transformers checkpoint folder, fp32 master weights
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

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


def load_transformers_lm(folder: str | Path, dtype: torch.dtype | str | None = None,
                         device: str | torch.device | None = None, *, weights: bool = True,
                         pad_with_eos: bool = False):
    """(causal LM, tokenizer) of a transformers checkpoint folder (ours exported, or a published one such as
    Llama-2-7B or GPT-Neo 2.7B), never touching the hub.

    dtype: e.g. torch.bfloat16 or "bfloat16"; default float32 whatever the checkpoint stores (a checkpoint
    saved in float16 must not become the master weights of full finetuning). device: where to put the
    model (default CPU). weights=False: the architecture of its config.json, randomly initialised (a
    finetuning run's own checkpoint is loaded into it next). pad_with_eos: a tokenizer without a pad token
    gets its eos token as pad."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer   # third-party, slow to import

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} holds no transformers model (config.json missing)")
    dtype = getattr(torch, dtype) if isinstance(dtype, str) else (dtype or torch.float32)
    if weights:
        model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True, dtype=dtype)
    else:
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(str(folder), local_files_only=True),
                                                 dtype=dtype)
    if device is not None:
        model = model.to(device)
    tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    if pad_with_eos and tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return model, tok


__all__ = ["MODEL_FILE", "TOKENIZER_DIR", "load_pretrained", "load_transformers_lm", "save_model_files"]
