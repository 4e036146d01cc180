"""Scale presets of the domain-upsampling notebooks (plain literals; notebooks override keys).

01_train builds into pipeline.UpsamplingSpec: the mixes, the sweep, which benchmarks the claims
read, and one shared.pipelines.lm_pretrain setup (model, train, data streams) plus the benchmark
suite (eval). 02_sweep and 03_ablation read 01_train's results.

smoke: a 2-core CPU, offline domains (shared.data corpora), a 2-layer decoder, 3 seeds.
small: one GPU, under an hour; the same offline domains, all of them, a 25M-parameter model.
full:  the paper's 7B / 1T-token run (abstract). The paper's architecture, batch, optimizer and mixes
       could not be read (README, Recipe): they are assumed, from MPT-7B (the mpt-7b flavour) and
       llm-foundry's mpt-7b.yaml (seq 2048, batch 1024, AdamW 1.2e-4, cosine to 0.1 after 100 warmup
       steps). 1T tokens = 476,837 steps of 1024 x 2048. Benchmarks every 5,000 steps (about 1% of
       training, so the 5% branch has 5 points); MMLU 5-shot per subject, GSM8K 8-shot, HumanEval
       pass@1, the protocol of Llama-2 (Touvron et al. 2023), which the paper compares against and
       which is scored on the same suite from data_dir/reference/Llama-2-7b-hf; and the Mosaic Eval
       Gauntlet v0.3's category average (shared.eval.gauntlet), the paper's measure of general ability
       (general_metric). Text, tokenizer, benchmark files and the comparison checkpoint come from data_dir.
"""
from __future__ import annotations

from dataclasses import dataclass

from shared.experiment import NotebookPresets
from shared.utils.config import StrictConfig

from .pipeline import UpsamplingSpec

# The mixes are ours: the paper's exact proportions were not found (see README). Same mixes at every scale.
MIXES = {"base_mix": {"general": 0.7, "math": 0.1, "code": 0.1, "knowledge": 0.1},
         "upsampled_mix": {"general": 0.25, "math": 0.25, "code": 0.25, "knowledge": 0.25}}
SWEEP = {"fractions": [0.05, 0.1, 0.2, 0.3, 1.0],        # the paper's 5-30%, and 100% (upsampled throughout)
         "ablate": ["math", "code", "knowledge"], "ablation_fraction": 0.1}
SMOKE_METRICS = {"domain_metrics": {"math": "math_answer_nll", "code": "code_heldout_loss",
                                    "knowledge": "knowledge_answer_nll"},
                 "general_metric": "general_loss", "accuracy_metrics": {"knowledge": "knowledge_recall_acc"}}
# Limited domain sets (about 12-15k tokens each): the base mix reads each about 1.5 times over the
# 205k training tokens, upsampling repeats it (about 4 epochs at f = 100%). Math trains on 7 of the 10
# arithmetic templates; the benchmark asks the other 3 (papers.domain_upsampling.domains).
SMOKE_MATH = {"n_train": 200, "n_test": 100}
SMOKE_FACTS = {"n_entities": 16}
GENERAL = ["wordnet", "gcide_general", "fortunes", "python_docs"]
SMOKE_STREAMS = {"general": {"corpora": [{"name": "wordnet", "max_docs": 1500}, {"name": "gcide_general", "max_docs": 1500},
                                         {"name": "fortunes", "max_docs": 1500}, {"name": "python_docs", "max_docs": 20}]},
                 "math": {"corpora": [{"name": "upsampling_math", **SMOKE_MATH}]},
                 "code": {"corpora": [{"name": "functions", "n_train": 200, "n_test": 10}]},
                 "knowledge": {"corpora": [{"name": "facts", **SMOKE_FACTS}]}}
# After training, the full suite's harness and Gauntlet code scores the first seed's baseline once on small files in
# the public formats (evals.fixture_benchmarks): recorded in metrics.json, read by no claim.
FIXTURE_BENCHMARKS = {"tasks": ["mmlu_anatomy", "mmlu_high_school_mathematics", "gsm8k"],
                      "num_fewshot": {"mmlu_anatomy": 5, "mmlu_high_school_mathematics": 5, "gsm8k": 8},
                      "gauntlet": ["copa", "lambada_openai", "jeopardy", "svamp"], "rows": 4, "max_gen_toks": 16}
SMOKE = {**MIXES, **SWEEP, **SMOKE_METRICS, "seeds": [0, 1, 2], "fixture_benchmarks": FIXTURE_BENCHMARKS,
         "model": {"n_layer": 2, "n_head": 4, "d_model": 128, "max_seq_len": 128},
         "train": {"max_steps": 200, "global_batch_size": 8, "micro_batch_size": 8, "lr": 3e-3, "betas": [0.9, 0.95],
                   "weight_decay": 0.0, "schedule": "cosine", "warmup_fraction": 0.05, "alpha_f": 0.1,
                   "eval_every": 20, "keep_last_n": 1, "log_every": 10, "progress_bar": False},
         "data": {"seq_len": 128, "tokenizer": {"vocab_size": 2048}, "streams": SMOKE_STREAMS},
         "eval": {"kind": "smoke", "general_corpora": GENERAL, "n_general": 32, "n_math": 48, "n_code": 48,
                  "n_knowledge": None, "mcq": False,
                  "math_kwargs": SMOKE_MATH, "facts_kwargs": SMOKE_FACTS}}
SMALL = {**SMOKE, "seeds": [0, 1],
         "model": {"n_layer": 8, "n_head": 8, "d_model": 512, "max_seq_len": 512},
         "train": {**SMOKE["train"], "max_steps": 4000, "global_batch_size": 64, "micro_batch_size": 32, "lr": 1e-3,
                   "eval_every": 500, "log_every": 50, "progress_bar": True},
         "data": {"seq_len": 512, "tokenizer": {"vocab_size": 8192},
                  "streams": {"general": {"corpora": [{"name": n} for n in GENERAL]},
                              "math": {"corpora": [{"name": "upsampling_math", "n_train": 20000, "n_test": 500}]},
                              "code": {"corpora": [{"name": "functions", "n_train": 20000}]},
                              "knowledge": {"corpora": [{"name": "facts", "n_entities": 200}]}}},
         "eval": {**SMOKE["eval"], "n_general": 256, "n_math": 500, "n_code": 300, "n_knowledge": None, "mcq": True,
                  "math_kwargs": {"n_train": 20000, "n_test": 500},
                  "facts_kwargs": {"n_entities": 200}}}
DOMAINS = ("general", "math", "code", "knowledge")
FULL = {**MIXES, **SWEEP, "seeds": [0],
        "domain_metrics": {"math": "gsm8k_em", "code": "humaneval_pass1", "knowledge": "mmlu_acc"},
        "general_metric": "gauntlet_average", "accuracy_metrics": {},
        "model": {"flavour": "mpt-7b", "low_precision_norm": True},
        "train": {"max_steps": 476837, "global_batch_size": 1024, "micro_batch_size": 8, "optimizer": "adamw",
                  "lr": 1.2e-4, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.0, "schedule": "cosine",
                  "warmup_steps": 100, "alpha_f": 0.1, "grad_clip": 1.0, "precision": "bf16", "parallelism": "fsdp",
                  # MPT-7B at micro-batch 8 x 2048 needs ~69 GiB per H100 without it (python -m shared.preflight)
                  "activation_checkpointing": True,
                  "eval_every": 5000, "checkpoint_every": 2000, "keep_last_n": 2, "log_every": 10, "progress_bar": True},
        "data": {"seq_len": 2048, "tokenizer": {"path": "{data_dir}/tokenizer"},
                 "streams": {d: {"path": "{data_dir}/" + d, "packed_dir": "{data_dir}/packed/" + d} for d in DOMAINS}},
        "eval": {"kind": "full", "micro_batch_size": 8, "max_new_tokens": 256,
                 "files": {"general": "{data_dir}/eval/general_heldout.jsonl", "humaneval": "bundled"},
                 "limits": {"general": 2000, "humaneval": None},        # None: all 164 HumanEval problems
                 # MMLU and GSM8K through lm-evaluation-harness, from <data_dir>/benchmarks/{mmlu,gsm8k}/<split>.jsonl
                 "harness": {"data_dir": "{data_dir}/benchmarks", "tasks": ["mmlu", "gsm8k"],
                             "num_fewshot": {"mmlu": 5, "gsm8k": 8}, "limit": None, "mmlu_subjects": None},
                 # the Mosaic Eval Gauntlet v0.3 (shared.eval.gauntlet), the paper's general ability, from the same folder
                 "gauntlet": {"data_dir": "{data_dir}/benchmarks", "categories": None, "limit": None,
                              "mmlu_subjects": None}},          # None: all 57 MMLU subjects
        "reference": {"name": "Llama-2-7b", "path": "{data_dir}/reference/Llama-2-7b-hf"},
        "needs_data_dir": True}


@dataclass
class SweepSpec(StrictConfig):
    """02_sweep: the training notebook whose results it reads, and the fraction its claims test."""
    source_notebook: str = "01_train"
    branch_fraction: float = 0.2


@dataclass
class AblationSpec(StrictConfig):
    """03_ablation: the training notebook whose results it reads."""
    source_notebook: str = "01_train"


SWEEP_PRESET = {"source_notebook": "01_train", "branch_fraction": 0.2}
ABLATION_PRESET = {"source_notebook": "01_train"}

NOTEBOOKS = {
    "01_train": NotebookPresets(UpsamplingSpec, {"smoke": SMOKE, "small": SMALL, "full": FULL}),
    "02_sweep": NotebookPresets(SweepSpec, {s: SWEEP_PRESET for s in ("smoke", "small", "full")}),
    "03_ablation": NotebookPresets(AblationSpec, {s: ABLATION_PRESET for s in ("smoke", "small", "full")}),
}
