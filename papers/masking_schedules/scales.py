"""Typed presets of the masking-rate-schedule notebook, every scale (plain literals; notebooks override keys).

Ankner et al. (EACL 2024) pretrain BERT-base and BERT-large on C4 and compare fixed masking rates with schedules
of the rate over training; evaluation is always at 15%. The exact steps, batch and optimizer of their runs were not
found in stored copies of the paper: the full preset uses MosaicML's BERT-base recipe from the authors' group
(mosaicml/examples v0.0.4, examples/bert/yamls/main/hf-bert-base-uncased.yaml: C4, seq 128, batch 4096, 70k steps,
decoupled AdamW 5e-4, no clipping) on the bert-base flavour, and the same group's GLUE recipe (per-task epochs,
batch, lr; seq 256; RTE / MRPC / STS-B from the MNLI model). The recipe card (README.md) marks each such value.
"""
from __future__ import annotations

from shared.eval.glue import MOSAICML_GLUE_FINETUNE as FULL_FINETUNE
from shared.eval.glue import MOSAICML_GLUE_PER_TASK as FULL_PER_TASK
from shared.eval.glue import MOSAICML_GLUE_TASK_SEEDS as FULL_TASK_SEEDS
from shared.eval.glue import MOSAICML_GLUE_TASKS
from shared.experiment.presets import NotebookPresets

from .sweep import SCHEDULES, SchedulesSpec

PAPER = {"glue_gain_base": 0.46, "glue_gain_large": 0.25, "speedup_base": 1.89}

SMOKE_DATA = {"kind": "corpora", "corpora": ["wordnet", "gcide"], "vocab_size": 1024, "seq_len": 64,
              "max_docs": 12000, "eval_docs": 256, "tokenizer_max_docs": 12000}
SMOKE_TRAIN = {"lr": 3e-3, "betas": [0.9, 0.98], "eps": 1e-6, "weight_decay": 1e-5, "schedule": "linear",
               "warmup_fraction": 0.06, "alpha_f": 0.02, "precision": "fp32", "progress_bar": False, "grad_clip": 1.0}
# classic BERT (learned positions, GELU MLP); unpadding only changes speed, not the computation
BERT_SWITCHES = {"alibi": False, "glu": False, "unpad": True, "low_precision_norm": False, "dropout": 0.0,
                 "attn_dropout": 0.0}
GLUE = list(MOSAICML_GLUE_TASKS)

SCHEDULES_PRESETS = NotebookPresets(SchedulesSpec, {
    "smoke": {"model": {"n_layer": 2, "n_head": 4, "d_model": 64, "d_ff": 256, "max_seq_len": 64, **BERT_SWITCHES},
              "schedules": ["fixed 15%", "fixed 22.5%", "fixed 30%", "linear 30%->15%", "linear 15%->30%"],
              "seeds": [0, 1, 2], "finetune_schedules": ["fixed 15%", "linear 30%->15%"],
              "data": SMOKE_DATA, "train": {**SMOKE_TRAIN, "max_steps": 250, "log_every": 25, "eval_every": 25},
              "micro_batch_size": 32, "eval_samples": 256,
              "eval": {"tasks": ["acceptability", "word_class"], "task_train": 1500, "task_eval": 400,
                       "glue_dir": None, "seeds": None,
                       "finetune": {"max_steps": 150, "lr": 1e-3, "micro_batch_size": 32, "seq_len": 40,
                                    "dropout": 0.0, "weight_decay": 5e-6}}},
    "small": {"model": {"n_layer": 4, "n_head": 4, "d_model": 256, "d_ff": 1024, "max_seq_len": 128, **BERT_SWITCHES},
              "schedules": list(SCHEDULES), "seeds": [0, 1, 2, 3, 4],
              "data": {**SMOKE_DATA, "vocab_size": 8192, "seq_len": 128, "max_docs": None, "eval_docs": 2000},
              "train": {**SMOKE_TRAIN, "lr": 1e-3, "precision": "bf16", "max_steps": 4000, "log_every": 200,
                        "eval_every": 200},
              "micro_batch_size": 256, "eval_samples": 2000,
              "eval": {"tasks": ["acceptability", "word_class", "similarity", "synonym_swap"], "task_train": 4000,
                       "task_eval": 1000, "glue_dir": None, "seeds": None,
                       "finetune": {"max_steps": 400, "lr": 1e-4, "micro_batch_size": 32, "seq_len": 64,
                                    "dropout": 0.1, "weight_decay": 5e-6}}},
    "full": {"model": {"flavour": "bert-base", "unpad": True},
             "schedules": list(SCHEDULES), "seeds": [17, 18, 19],
             "data": {"kind": "cache", "train_dir": "{data_dir}/c4_mlm128/train", "eval_dir": "{data_dir}/c4_mlm128/val",
                      "tokenizer_dir": "{data_dir}/bert-base-uncased", "source_train": "{data_dir}/c4/en/train",
                      "source_eval": "{data_dir}/c4/en/validation", "seq_len": 128},
             "train": {**SMOKE_TRAIN, "optimizer": "adamw", "lr": 5e-4, "weight_decay_scaling": "schedule",
                       "decay_norm_and_bias": True, "grad_clip": None, "precision": "bf16", "progress_bar": True,
                       "global_batch_size": 4096, "micro_batch_size": 128, "parallelism": "ddp", "max_steps": 70000,
                       "log_every": 2000, "eval_every": 2000},
             "micro_batch_size": 128, "eval_samples": None,
             "eval": {"tasks": GLUE, "task_train": None, "task_eval": None, "glue_dir": "{data_dir}/glue",
                      "seeds": [19], "finetune": FULL_FINETUNE, "per_task": FULL_PER_TASK,
                      "task_seeds": FULL_TASK_SEEDS, "start_from": {"rte": "mnli", "mrpc": "mnli", "stsb": "mnli"},
                      "scoring": "mosaicml"},
             "needs_data_dir": True},
})

NOTEBOOKS: dict[str, NotebookPresets] = {"schedules": SCHEDULES_PRESETS}
