"""The CPU rehearsal of the full preset (``python ci/run_notebooks.py --scale full --rehearse --paper
domain_upsampling``; ``ci/rehearsal.py``): 01_train at scale full, on 2 torchrun nodes, with MPT-7B's flavour cut
to 2 layers of width 64, 8 steps, two upsampling branches (02_sweep's f = 20% and upsampling throughout) and one
ablation at f = 20% (the full preset's 10% of 8 steps is under one step; 03_ablation compares it with the branch
of its own fraction), and every evaluation the full preset
runs (held-out loss, HumanEval in the sandbox, MMLU and GSM8K through the harness, the whole Gauntlet, the
reference model) on two questions each, MMLU on one subject. Everything else (the MPT flavour's other settings, FSDP2, bf16, activation
checkpointing, the data_dir layout, the packing of each domain, the branches resuming the baseline's checkpoint)
is the full preset's.

02_sweep and 03_ablation (UNLAUNCHED) train nothing: they read 01_train's full-scale outputs and draw the
paper's figures from them, as they are.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from shared.data.tokenizer import train_bpe
from shared.eval.benchmark_fixtures import write_fixtures
from shared.eval.gauntlet import tasks as gauntlet_tasks
from shared.models.gpt import GPT, GPTConfig
from shared.models.gpt_hf import gpt_to_llama

DOMAINS = ("general", "math", "code", "knowledge")
NOTEBOOKS = {
    "01_train": {
        "fractions": [0.2, 1.0], "ablate": ["math"], "ablation_fraction": 0.2,
        "model": {"n_layer": 2, "d_model": 64, "n_head": 4, "max_seq_len": 64},
        "train": {"max_steps": 8, "global_batch_size": 4, "micro_batch_size": 1, "warmup_steps": 1,
                  "eval_every": 1000, "checkpoint_every": 2, "log_every": 1, "progress_bar": False},
        "data": {"seq_len": 64},
        "eval": {"micro_batch_size": 2, "max_new_tokens": 8, "limits": {"general": 4, "humaneval": 2},
                 "harness": {"limit": 2, "mmlu_subjects": ["anatomy"]},
                 "gauntlet": {"mmlu_subjects": ["anatomy"], "limit": 2}},
    },
}
UNLAUNCHED = {"02_sweep": {}, "03_ablation": {}}


def _text(domain: str, i: int) -> str:
    if domain == "math":
        return f"Question: what is {i} plus {i + 3}? Answer: {2 * i + 3}."
    if domain == "code":
        return f"def add_{i}(x):\n    return x + {i}\n"
    if domain == "knowledge":
        return f"The river number {i} flows into the sea of {i % 7}."
    return f"Sam walked {i} miles to the market and bought {i % 5} apples for the family."


def make_data_dir(root: Path) -> None:
    """The full preset's data_dir at toy size: ``tokenizer/``, ``<domain>/part-0.jsonl``,
    ``eval/general_heldout.jsonl``, ``benchmarks/<task>/<split>.jsonl`` for every harness and Gauntlet task,
    and ``reference/Llama-2-7b-hf/`` (a 2-layer Llama with the same tokenizer)."""
    texts = {d: [_text(d, i) for i in range(400)] for d in DOMAINS}
    tokenizer = train_bpe([t for ts in texts.values() for t in ts], 512, show_progress=False)
    tokenizer.save_pretrained(str(root / "tokenizer"))
    for domain, rows in texts.items():
        (root / domain).mkdir(parents=True, exist_ok=True)
        (root / domain / "part-0.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in rows))
    (root / "eval").mkdir(exist_ok=True)
    (root / "eval" / "general_heldout.jsonl").write_text(
        "".join(json.dumps({"text": _text("general", 1000 + i)}) + "\n" for i in range(8)))
    benchmarks = [t.benchmark for t in gauntlet_tasks() if t.benchmark != "mmlu"] + ["mmlu_anatomy", "gsm8k"]
    write_fixtures(root / "benchmarks", benchmarks, rows=2, shot_rows=10)   # shots: GSM8K 8, OpenBookQA 10
    torch.manual_seed(0)
    reference = gpt_to_llama(GPT(GPTConfig(vocab_size=len(tokenizer), n_layer=2, n_head=2, d_model=32,
                                           max_seq_len=256)))
    reference.save_pretrained(str(root / "reference" / "Llama-2-7b-hf"))
    tokenizer.save_pretrained(str(root / "reference" / "Llama-2-7b-hf"))
