"""Typed presets of the MosaicBERT notebooks, every scale (plain literals; notebooks override keys).

smoke: 2-core CPU, offline dictionary English (WordNet + GCIDE entries, one entry per sample, so
       short entries leave padding as short C4 documents do), a byte-level BPE, 2- and 4-layer
       encoders, stand-in downstream tasks (shared.eval.glue_standins).
small: one GPU, < 1 h: 4- and 8-layer encoders on the same offline data (or C4 from data_dir via
       the "cache" data kind), real GLUE from data_dir when given.
full:  the paper's recipe (mosaicml/examples tag v0.0.4, examples/bert/yamls/main/*.yaml): C4,
       bert-base-uncased tokenizer, seq 128, global batch 4096, 70k steps, decoupled AdamW lr 5e-4,
       betas (0.9, 0.98), eps 1e-6, wd 1e-5 on every parameter, no gradient clipping, warmup 6%,
       linear decay to 0.02x, bf16, 8 GPUs via torchrun. MosaicBERT (flavours mosaicbert-base /
       -large) and the BERT baseline, transformers' own BertForMaskedLM from the bert-base-uncased
       config (hf-bert-base-uncased.yaml, which masks 15%), both train at 30%. GLUE finetuning follows the
       authors' per-task recipes (src/glue/finetuning_jobs.py, yamls/finetuning/glue/*.yaml): epochs,
       batch, lr and wd per task, seq 256, per-task seeds, RTE / MRPC / STS-B started from the MNLI
       model, MNLI scored on matched and mismatched, STS-B by Spearman. The recipe card
       (README.md, ## Recipe) gives every full value its source.
"""
from __future__ import annotations

from shared.eval.glue import MOSAICML_GLUE_FINETUNE as FULL_FINETUNE
from shared.eval.glue import MOSAICML_GLUE_PER_TASK as FULL_PER_TASK
from shared.eval.glue import MOSAICML_GLUE_TASK_SEEDS as FULL_TASK_SEEDS
from shared.eval.glue import MOSAICML_GLUE_TASKS
from shared.experiment.presets import NotebookPresets
from shared.pipelines.mlm_pretrain import glue_fixture_check, hf_bert_spec

from .experiments import ABLATIONS, AblationSpec, ParetoSpec
from .throughput import PaddingThroughputSpec

SMOKE_DATA = {"kind": "corpora", "corpora": ["wordnet", "gcide"], "vocab_size": 1024, "seq_len": 64,
              "max_docs": 12000, "eval_docs": 256, "tokenizer_max_docs": 12000}
SMALL_DATA = {**SMOKE_DATA, "vocab_size": 8192, "seq_len": 128, "max_docs": None, "eval_docs": 2000}
FULL_DATA = {"kind": "cache", "train_dir": "{data_dir}/c4_mlm128/train", "eval_dir": "{data_dir}/c4_mlm128/val",
             "tokenizer_dir": "{data_dir}/bert-base-uncased", "source_train": "{data_dir}/c4/en/train",
             "source_eval": "{data_dir}/c4/en/validation", "seq_len": 128}

SMOKE_SIZES = {"base": {"n_layer": 2, "n_head": 4, "d_model": 64, "d_ff": 256, "max_seq_len": 64},
               "large": {"n_layer": 4, "n_head": 4, "d_model": 64, "d_ff": 256, "max_seq_len": 64}}
SMALL_SIZES = {"base": {"n_layer": 4, "n_head": 4, "d_model": 256, "d_ff": 1024, "max_seq_len": 128},
               "large": {"n_layer": 8, "n_head": 8, "d_model": 512, "d_ff": 2048, "max_seq_len": 128}}

# The recipe switches. "bert" is the classic BERT architecture; no dropout below full scale.
BERT_SWITCHES = {"alibi": False, "glu": False, "unpad": False, "low_precision_norm": False, "dropout": 0.0,
                 "attn_dropout": 0.0}
MOSAIC_SWITCHES = {"alibi": True, "glu": True, "unpad": True, "low_precision_norm": True, "dropout": 0.0,
                   "attn_dropout": 0.0}
# Both architectures train at MosaicBERT's 30% in the Pareto comparison, so it isolates the architecture from the
# masking rate; the rate's own effect is the ablation's "- 30% masking" row.
MASK_RATES = {"bert": 0.30, "mosaicbert": 0.30}


def _models(sizes: dict) -> dict:
    return {"bert": {k: {**v, **BERT_SWITCHES} for k, v in sizes.items()},
            "mosaicbert": {k: {**v, **MOSAIC_SWITCHES} for k, v in sizes.items()}}


# full: the BERT baseline is transformers' BertForMaskedLM built from the bert-base-uncased config (the authors'
# hf_bert model, use_pretrained false); MosaicBERT is our encoder with the recipe switches
# (the base entry names bert-base-uncased's hidden and intermediate sizes too, which its config.json holds, so that
# every size field can be overridden, e.g. by the CPU rehearsal, rehearsal.py); MosaicBERT's entries are
# {"flavour": ...} dicts for the same reason
HF_BERT = "{data_dir}/bert-base-uncased"
FULL_MODELS = {"bert": {"base": {**hf_bert_spec("base", HF_BERT), "hidden_size": 768, "intermediate_size": 3072},
                        "large": hf_bert_spec("large", HF_BERT)},
               "mosaicbert": {"base": {"flavour": "mosaicbert-base"}, "large": {"flavour": "mosaicbert-large"}}}
FULL_REFERENCE = FULL_MODELS["bert"]
# At full scale each architecture trains with its authors' recipe: the baseline masks 15%
# (hf-bert-base-uncased.yaml), MosaicBERT 30%, as the paper's Pareto curves compare them; smoke and small keep one
# rate for both (MASK_RATES) so that their claim isolates the architecture, and the rate's effect is the ablation's.
FULL_MASK_RATES = {"bert": 0.15, "mosaicbert": 0.30}

# the MosaicBERT recipe's optimizer, with a higher LR for tiny models and short runs
SMOKE_TRAIN = {"lr": 3e-3, "betas": [0.9, 0.98], "eps": 1e-6, "weight_decay": 1e-5, "schedule": "linear",
               "warmup_fraction": 0.06, "alpha_f": 0.02, "precision": "fp32", "progress_bar": False,
               "grad_clip": 1.0}
SMALL_TRAIN = {**SMOKE_TRAIN, "lr": 1e-3, "precision": "bf16"}
FULL_TRAIN = {"optimizer": "adamw", "lr": 5e-4, "betas": [0.9, 0.98], "eps": 1e-6, "weight_decay": 1e-5,
              "weight_decay_scaling": "schedule", "decay_norm_and_bias": True, "grad_clip": None,
              "schedule": "linear", "warmup_fraction": 0.06, "alpha_f": 0.02, "precision": "bf16",
              "progress_bar": True, "global_batch_size": 4096, "micro_batch_size": 128, "parallelism": "ddp"}

SMOKE_FINETUNE = {"max_steps": 150, "lr": 1e-3, "micro_batch_size": 32, "seq_len": 40, "dropout": 0.0,
                  "weight_decay": 5e-6}
GLUE = list(MOSAICML_GLUE_TASKS)
# The full preset's GLUE path (readers of the public formats, per-task recipe and seeds, MRPC / STS-B started from
# the MNLI model, MosaicML's scoring) run briefly on small generated files in those formats, after the stand-in
# results, so that smoke runs exercise it (shared.pipelines.mlm_pretrain.GlueFixtureCheck); no claim reads it.
GLUE_FIXTURES = glue_fixture_check(SMOKE_FINETUNE)
SMOKE_EVAL = {"tasks": ["acceptability", "word_class"], "task_train": 1500, "task_eval": 400, "glue_dir": None,
              "finetune": SMOKE_FINETUNE, "seeds": [0], "glue_fixtures": GLUE_FIXTURES}
SMALL_EVAL = {"tasks": ["acceptability", "word_class", "similarity", "synonym_swap"], "task_train": 4000,
              "task_eval": 1000, "glue_dir": None, "finetune": {**SMOKE_FINETUNE, "max_steps": 400, "lr": 1e-4},
              "seeds": [0, 1, 2], "glue_fixtures": GLUE_FIXTURES}
FULL_EVAL = {"tasks": GLUE, "task_train": None, "task_eval": None, "glue_dir": "{data_dir}/glue",
             "finetune": FULL_FINETUNE, "per_task": FULL_PER_TASK, "seeds": [19], "task_seeds": FULL_TASK_SEEDS,
             "start_from": {"rte": "mnli", "mrpc": "mnli", "stsb": "mnli"}, "scoring": "mosaicml"}

# The paper's reported numbers, shown as the paper's (Portes et al. 2023, abstract).
PAPER = {"mosaicbert_base_glue": 79.6, "mosaicbert_base_hours_8xA100": 1.13, "cost_usd": 20}

PARETO = NotebookPresets(ParetoSpec, {
    "smoke": {"models": _models(SMOKE_SIZES), "mask_rates": MASK_RATES, "reference": SMOKE_SIZES,
              "data": SMOKE_DATA, "train": {**SMOKE_TRAIN, "max_steps": 300, "log_every": 25},
              "micro_batch_size": 32, "checkpoints": 2, "eval": SMOKE_EVAL, "eval_samples": 256},
    "small": {"models": _models(SMALL_SIZES), "mask_rates": MASK_RATES, "reference": SMALL_SIZES,
              "data": SMALL_DATA, "train": {**SMALL_TRAIN, "max_steps": 6000, "log_every": 50},
              "micro_batch_size": 256, "checkpoints": 4, "eval": SMALL_EVAL, "eval_samples": 2000},
    "full": {"models": FULL_MODELS, "mask_rates": FULL_MASK_RATES, "reference": FULL_REFERENCE,
             "data": FULL_DATA, "train": {**FULL_TRAIN, "max_steps": 70000, "log_every": 2000},
             "micro_batch_size": 128, "checkpoints": 5, "eval": FULL_EVAL, "eval_samples": None,
             "pretrain_seeds": [17, 18, 19, 20, 21], "needs_data_dir": True},
})

# Component ablation at base size: MosaicBERT with one component removed at a time.
ABLATION = NotebookPresets(AblationSpec, {
    "smoke": {"model": {**SMOKE_SIZES["base"], **MOSAIC_SWITCHES}, "mask_rate": MASK_RATES["mosaicbert"],
              "ablations": list(ABLATIONS), "data": SMOKE_DATA,
              "train": {**SMOKE_TRAIN, "max_steps": 200, "log_every": 25}, "micro_batch_size": 32,
              "eval": SMOKE_EVAL, "eval_samples": 256},
    "small": {"model": {**SMALL_SIZES["base"], **MOSAIC_SWITCHES}, "mask_rate": MASK_RATES["mosaicbert"],
              "ablations": list(ABLATIONS), "data": SMALL_DATA,
              "train": {**SMALL_TRAIN, "max_steps": 4000, "log_every": 50}, "micro_batch_size": 256,
              "eval": SMALL_EVAL, "eval_samples": 2000},
    # a periodic checkpoint every 3,500 steps (the yaml's save_interval), so a preempted run resumes; the pareto
    # runs checkpoint at each of their `checkpoints` instead
    "full": {"model": {"flavour": "mosaicbert-base"}, "mask_rate": MASK_RATES["mosaicbert"],
             "ablations": list(ABLATIONS), "data": FULL_DATA,
             "train": {**FULL_TRAIN, "max_steps": 70000, "log_every": 100, "checkpoint_every": 3500},
             "micro_batch_size": 128, "eval": FULL_EVAL, "eval_samples": None, "needs_data_dir": True},
})

# Throughput against the padding fraction of the batch (one training step, padded vs unpadded).
PADDING_THROUGHPUT = NotebookPresets(PaddingThroughputSpec, {
    "smoke": {"model": {"n_layer": 4, "n_head": 4, "d_model": 128, "d_ff": 512}, "vocab_size": 2048,
              "seq_len": 128, "micro_batch_size": 16, "paddings": [0.0, 0.25, 0.5, 0.75], "rounds": 8,
              "with_hf": True},
    "small": {"model": {"flavour": "bert-base"}, "vocab_size": 30522, "seq_len": 128, "micro_batch_size": 64,
              "paddings": [0.0, 0.1, 0.25, 0.5, 0.75], "rounds": 10, "with_hf": True},
    "full": {"model": {"flavour": "bert-base"}, "vocab_size": 30522, "seq_len": 128, "micro_batch_size": 256,
             "paddings": [0.0, 0.1, 0.25, 0.5, 0.75], "rounds": 20, "with_hf": True},
})

NOTEBOOKS: dict[str, NotebookPresets] = {"pareto": PARETO, "ablation": ABLATION,
                                         "padding_throughput": PADDING_THROUGHPUT}
