"""The CPU rehearsal of the full preset (``python ci/run_notebooks.py --scale full --rehearse --paper
masking_schedules``; ``ci/rehearsal.py``): schedules at scale full, on 2 torchrun nodes, one pretraining run of
each kind of schedule (fixed, linear; ``PREEMPT_KINDS``) preempted once after its first periodic checkpoint and resumed; the other runs of a
kind differ from it only in values.

Shrunk (sizes only): transformers' BertForMaskedLM at both sizes cut to 2 layers of width 32, 4 steps of global
batch 8 (micro-batch 4 per rank) with the MLM loss evaluated and a checkpoint saved every 2, one pretraining seed
of the three (17), the four schedules the notebook's claims compare (fixed 15%, the mean-rate control fixed 22.5%,
linear 30%->15% and 15%->30%) of the seven, GLUE on 16 training and 8 evaluation rows per task, one epoch of
micro-batch 8 at sequence 64 per task, one finetuning seed (19) of the five. Everything else is the full preset's:
BERT-base and BERT-large (with its own lr) in turn, the data_dir of ``papers/mosaicbert/rehearsal.py`` (the same
layout: prepared C4 token caches ``c4_mlm128/`` evaluated whole at 15%, the bert-base-uncased tokenizer and
config.json), DDP, bf16, the decoupled AdamW recipe, and all eight GLUE tasks read from the public formats with the
per-task recipes, RTE / MRPC / STS-B started from the MNLI model, MosaicML's scoring and its per-task floors.
"""
from __future__ import annotations

from pathlib import Path

from papers.mosaicbert import rehearsal as mosaicbert_rehearsal
from shared.eval.glue import MOSAICML_GLUE_TASKS

TINY_HF = mosaicbert_rehearsal.TINY_HF
# one run preempted per kind of masking schedule: the others of a kind differ only in rates and sizes
PREEMPT_KINDS = {"schedules": ["masking.kind"]}
NOTEBOOKS = {
    "schedules": {
        "models": {"base": {"model": TINY_HF}, "large": {"model": TINY_HF}},
        "schedules": ["fixed 15%", "fixed 22.5%", "linear 30%->15%", "linear 15%->30%"],
        "seeds": [17],
        "train": {"max_steps": 4, "global_batch_size": 8, "micro_batch_size": 4, "log_every": 1, "eval_every": 2,
                  "checkpoint_every": 2, "progress_bar": False},
        "micro_batch_size": 4,
        "eval": {"task_train": 16, "task_eval": 8, "seeds": [19],
                 "finetune": {"epochs": 1, "micro_batch_size": 8, "seq_len": 64},
                 "per_task": {t: {"epochs": 1, "micro_batch_size": 8} for t in MOSAICML_GLUE_TASKS if t != "mnli"}},
    },
}


def make_data_dir(root: Path) -> None:
    """The full preset's data_dir at toy size: the layout MosaicBERT's full presets read (``c4/en``, the prepared
    ``c4_mlm128/{train,val}`` caches, ``bert-base-uncased/`` tokenizer and config.json, ``glue/``); see
    ``papers.mosaicbert.rehearsal.make_data_dir``."""
    mosaicbert_rehearsal.make_data_dir(root)
