"""Typed presets of the masking-rate-schedule notebook, every scale (plain literals; notebooks override keys).

Ankner et al. (EACL 2024) pretrain BERT-base and BERT-large on C4 and compare fixed masking rates with schedules
of the rate over training; evaluation is always at 15%. The full preset runs both sizes with the authors' own
configuration, the `paper-mlm-schedule` branch of mosaicml/examples (commit 427724ff):
examples/bert/yamls/main/mlm_scheduled/base.yaml (C4, seq 128, batch 4096, 70k steps, decoupled AdamW 5e-4, warmup
6%, decay to 0.02x, seeds 17 / 2048 / 3047) and launch_pretrain.py, whose BERT-large branch sets the
bert-large-uncased shape and lr 2e-4 and keeps the rest (the model: transformers' BertForMaskedLM, `hf_bert`); GLUE follows yamls/glue/mlm_scheduled/base.yaml and
src/glue/finetuning_jobs.py of that branch (MosaicML's per-task recipes, QQP 3 epochs, five seeds per task). Smoke
and small train one small model. The recipe card (README.md) marks each value.
"""
from __future__ import annotations

from shared.eval.glue import MOSAICML_GLUE_FINETUNE as FULL_FINETUNE
from shared.eval.glue import MOSAICML_GLUE_PER_TASK as FULL_PER_TASK
from shared.eval.glue import MOSAICML_GLUE_MIN_METRIC, MOSAICML_GLUE_SEEDS, MOSAICML_GLUE_TASKS
from shared.experiment.presets import NotebookPresets
from shared.pipelines.mlm_pretrain import glue_fixture_check, hf_bert_spec

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

# The authors' BERT-large runs (launch_pretrain.py, model == "large") change only the shape and the peak lr.
# the authors' model: transformers' BertForMaskedLM from the bert-<size>-uncased config, randomly initialised
HF_BERT = "{data_dir}/bert-base-uncased"
# (base also names bert-base-uncased's hidden and intermediate sizes, which its config.json holds, so that every size
# field can be overridden, e.g. by the CPU rehearsal, rehearsal.py)
FULL_MODELS = {"base": {"model": {**hf_bert_spec("base", HF_BERT), "hidden_size": 768, "intermediate_size": 3072}},
               "large": {"model": hf_bert_spec("large", HF_BERT), "train": {"lr": 2e-4}}}
# yamls/glue/mlm_scheduled/base.yaml gives every task the five seeds; finetuning_jobs.py trains QQP for 3 epochs
FULL_GLUE_PER_TASK = {**FULL_PER_TASK, "qqp": {**FULL_PER_TASK["qqp"], "epochs": 3}}

SMOKE_FINETUNE = {"max_steps": 150, "lr": 1e-3, "micro_batch_size": 32, "seq_len": 40, "dropout": 0.0,
                  "weight_decay": 5e-6}
SMALL_FINETUNE = {"max_steps": 400, "lr": 1e-4, "micro_batch_size": 32, "seq_len": 64, "dropout": 0.1,
                  "weight_decay": 5e-6}

SCHEDULES_PRESETS = NotebookPresets(SchedulesSpec, {
    "smoke": {"models": {"base": {"model": {"n_layer": 2, "n_head": 4, "d_model": 64, "d_ff": 256, "max_seq_len": 64,
                                            **BERT_SWITCHES}}},
              "schedules": ["fixed 15%", "fixed 22.5%", "fixed 30%", "linear 30%->15%", "linear 15%->30%"],
              "seeds": [0, 1, 2], "finetune_schedules": ["fixed 15%", "linear 30%->15%"],
              "data": SMOKE_DATA, "train": {**SMOKE_TRAIN, "max_steps": 250, "log_every": 25, "eval_every": 25},
              "micro_batch_size": 32, "eval_samples": 256,
              "eval": {"tasks": ["acceptability", "word_class"], "task_train": 1500, "task_eval": 400,
                       "glue_dir": None, "seeds": None,
                       "finetune": SMOKE_FINETUNE,
                       # the full preset's GLUE path run briefly on small files in GLUE's public formats
                       # (shared.pipelines.mlm_pretrain.GlueFixtureCheck), after the stand-ins; no claim reads it
                       "glue_fixtures": glue_fixture_check(SMOKE_FINETUNE)}},
    "small": {"models": {"base": {"model": {"n_layer": 4, "n_head": 4, "d_model": 256, "d_ff": 1024, "max_seq_len": 128,
                                            **BERT_SWITCHES}}},
              "schedules": list(SCHEDULES), "seeds": [0, 1, 2, 3, 4],
              "data": {**SMOKE_DATA, "vocab_size": 8192, "seq_len": 128, "max_docs": None, "eval_docs": 2000},
              "train": {**SMOKE_TRAIN, "lr": 1e-3, "precision": "bf16", "max_steps": 4000, "log_every": 200,
                        "eval_every": 200},
              "micro_batch_size": 256, "eval_samples": 2000,
              "eval": {"tasks": ["acceptability", "word_class", "similarity", "synonym_swap"], "task_train": 4000,
                       "task_eval": 1000, "glue_dir": None, "seeds": None,
                       "finetune": SMALL_FINETUNE, "glue_fixtures": glue_fixture_check(SMALL_FINETUNE)}},
    "full": {"models": FULL_MODELS,
             "schedules": list(SCHEDULES), "seeds": [17, 2048, 3047],
             "data": {"kind": "cache", "train_dir": "{data_dir}/c4_mlm128/train", "eval_dir": "{data_dir}/c4_mlm128/val",
                      "tokenizer_dir": "{data_dir}/bert-base-uncased", "source_train": "{data_dir}/c4/en/train",
                      "source_eval": "{data_dir}/c4/en/validation", "seq_len": 128},
             "train": {**SMOKE_TRAIN, "optimizer": "adamw", "lr": 5e-4, "weight_decay_scaling": "schedule",
                       "decay_norm_and_bias": True, "grad_clip": None, "precision": "bf16", "progress_bar": True,
                       "global_batch_size": 4096, "micro_batch_size": 128, "parallelism": "ddp", "max_steps": 70000,
                       "log_every": 2000, "eval_every": 2000, "checkpoint_every": 1000},
             "micro_batch_size": 128, "eval_samples": None,
             "eval": {"tasks": GLUE, "task_train": None, "task_eval": None, "glue_dir": "{data_dir}/glue",
                      "seeds": list(MOSAICML_GLUE_SEEDS), "finetune": FULL_FINETUNE, "per_task": FULL_GLUE_PER_TASK,
                      "start_from": {"rte": "mnli", "mrpc": "mnli", "stsb": "mnli"},
                      "scoring": "mosaicml", "min_metric": MOSAICML_GLUE_MIN_METRIC},
             "needs_data_dir": True},
})

NOTEBOOKS: dict[str, NotebookPresets] = {"schedules": SCHEDULES_PRESETS}
