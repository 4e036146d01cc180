"""Scale presets shared by the MosaicBERT notebooks (plain literals; notebooks override keys).

smoke: 2-core CPU, offline dictionary English (WordNet + GCIDE entries, one entry per sample, so
       short entries leave padding as short C4 documents do), a byte-level BPE, 2- and 4-layer
       encoders, stand-in downstream tasks (shared.eval.glue_standins).
small: one GPU, < 1 h: 4- and 8-layer encoders on the same offline data (or C4 from data_dir via
       the "cache" data kind), real GLUE from data_dir when given.
full:  the paper's recipe (mosaicml/examples yamls/main/mosaic-bert-base-uncased.yaml, tag v0.0.4):
       C4, bert-base-uncased tokenizer, seq 128, global batch 4096, 70k steps, decoupled AdamW
       lr 5e-4, betas (0.9, 0.98), eps 1e-6, wd 1e-5, warmup 6%, linear decay to 0.02x, 30% masking,
       bf16, 8 GPUs via torchrun; GLUE finetuning (linear warmup 6%, decay to 0; 5 seeds).
"""
from __future__ import annotations

SMOKE_DATA = {"kind": "corpora", "corpora": ["wordnet", "gcide"], "vocab_size": 1024, "seq_len": 64,
              "max_docs": 12000, "eval_docs": 256, "tokenizer_max_docs": 12000}
SMOKE_SIZES = {"base": {"n_layer": 2, "n_head": 4, "d_model": 64, "d_ff": 256, "max_seq_len": 64},
               "large": {"n_layer": 4, "n_head": 4, "d_model": 64, "d_ff": 256, "max_seq_len": 64}}
# the MosaicBERT recipe's optimizer, with a higher LR for tiny models and short runs
SMOKE_TRAIN = {"lr": 3e-3, "betas": [0.9, 0.98], "eps": 1e-6, "weight_decay": 1e-5, "schedule": "linear",
               "warmup_fraction": 0.06, "alpha_f": 0.02, "precision": "fp32", "progress_bar": False,
               "grad_clip": 1.0}
SMOKE_FINETUNE = {"max_steps": 150, "lr": 1e-3, "micro_batch_size": 32, "seq_len": 40, "dropout": 0.0,
                  "weight_decay": 5e-6}

FULL_DATA = {"kind": "cache", "train_dir": "{data_dir}/c4_mlm128/train", "eval_dir": "{data_dir}/c4_mlm128/val",
             "tokenizer_dir": "{data_dir}/bert-base-uncased", "source_train": "{data_dir}/c4/en/train",
             "source_eval": "{data_dir}/c4/en/validation", "seq_len": 128}
FULL_SIZES = {"base": {"n_layer": 12, "n_head": 12, "d_model": 768, "d_ff": 3072, "max_seq_len": 128},
              "large": {"n_layer": 24, "n_head": 16, "d_model": 1024, "d_ff": 4096, "max_seq_len": 128}}
FULL_TRAIN = {"lr": 5e-4, "betas": [0.9, 0.98], "eps": 1e-6, "weight_decay": 1e-5, "schedule": "linear",
              "warmup_fraction": 0.06, "alpha_f": 0.02, "precision": "bf16", "progress_bar": True,
              "global_batch_size": 4096, "micro_batch_size": 128, "parallelism": "ddp"}
FULL_FINETUNE = {"max_steps": 3000, "lr": 5e-5, "micro_batch_size": 32, "seq_len": 128, "dropout": 0.1,
                 "weight_decay": 5e-6}
GLUE = ["mnli", "qnli", "qqp", "sst2", "cola", "stsb", "mrpc", "rte"]

# The recipe switches. "bert" is classic BERT trained the BERT way (15% masking, attention dropout).
ARCHS = {"bert": {"model": {"alibi": False, "glu": False, "unpad": False, "low_precision_norm": False,
                            "dropout": 0.0, "attn_dropout": 0.0}, "mask_rate": 0.15},
         "mosaicbert": {"model": {"alibi": True, "glu": True, "unpad": True, "low_precision_norm": True,
                                  "dropout": 0.0, "attn_dropout": 0.0}, "mask_rate": 0.30}}
FULL_ARCHS = {"bert": {"model": {**ARCHS["bert"]["model"], "dropout": 0.1, "attn_dropout": 0.1}, "mask_rate": 0.15},
              "mosaicbert": {"model": {**ARCHS["mosaicbert"]["model"], "dropout": 0.1}, "mask_rate": 0.30}}

# The paper's reported numbers, shown as the paper's (Portes et al. 2023, abstract).
PAPER = {"mosaicbert_base_glue": 79.6, "mosaicbert_base_hours_8xA100": 1.13, "cost_usd": 20}

PARETO = {
    "smoke": {"data": SMOKE_DATA, "sizes": SMOKE_SIZES, "archs": ARCHS, "train": SMOKE_TRAIN, "max_steps": 300,
              "micro_batch_size": 32, "checkpoints": 2, "log_every": 25, "tasks": ["acceptability", "word_class"],
              "task_train": 1500, "task_eval": 400, "glue_dir": None, "finetune": SMOKE_FINETUNE,
              "finetune_seeds": [0], "eval_samples": 256},
    "small": {"data": {**SMOKE_DATA, "vocab_size": 8192, "seq_len": 128, "max_docs": None, "eval_docs": 2000},
              "sizes": {"base": {"n_layer": 4, "n_head": 4, "d_model": 256, "d_ff": 1024, "max_seq_len": 128},
                        "large": {"n_layer": 8, "n_head": 8, "d_model": 512, "d_ff": 2048, "max_seq_len": 128}},
              "archs": ARCHS, "train": {**SMOKE_TRAIN, "lr": 1e-3, "precision": "bf16"}, "max_steps": 6000,
              "micro_batch_size": 256, "checkpoints": 4, "log_every": 50,
              "tasks": ["acceptability", "word_class", "similarity", "synonym_swap"], "task_train": 4000,
              "task_eval": 1000, "glue_dir": None, "finetune": {**SMOKE_FINETUNE, "max_steps": 400, "lr": 1e-4},
              "finetune_seeds": [0, 1, 2], "eval_samples": 2000},
    "full": {"data": FULL_DATA, "sizes": FULL_SIZES, "archs": FULL_ARCHS, "train": FULL_TRAIN, "max_steps": 70000,
             "micro_batch_size": 128, "checkpoints": 5, "log_every": 100, "tasks": GLUE, "task_train": None,
             "task_eval": None, "glue_dir": "{data_dir}/glue", "finetune": FULL_FINETUNE,
             "finetune_seeds": [19, 8364, 717, 10536, 90166], "eval_samples": 10000,
             "needs_data_dir": True},
}

# Component ablation: MosaicBERT with one component removed at a time (base size).
ABLATIONS = {"MosaicBERT": {}, "- ALiBi": {"alibi": False}, "- GLU": {"glu": False}, "- unpadding": {"unpad": False},
             "- low-precision LN": {"low_precision_norm": False}, "- 30% masking": {"mask_rate": 0.15}}
ABLATION = {
    "smoke": {**{k: PARETO["smoke"][k] for k in ("data", "train", "micro_batch_size", "log_every", "tasks", "task_train",
                                                  "task_eval", "glue_dir", "finetune", "finetune_seeds", "eval_samples")},
              "size": SMOKE_SIZES["base"], "max_steps": 200, "ablations": list(ABLATIONS)},
    "small": {**{k: PARETO["small"][k] for k in ("data", "train", "micro_batch_size", "log_every", "tasks", "task_train",
                                                  "task_eval", "glue_dir", "finetune", "finetune_seeds", "eval_samples")},
              "size": PARETO["small"]["sizes"]["base"], "max_steps": 4000, "ablations": list(ABLATIONS)},
    "full": {**{k: PARETO["full"][k] for k in ("data", "train", "micro_batch_size", "log_every", "tasks", "task_train",
                                                "task_eval", "glue_dir", "finetune", "finetune_seeds", "eval_samples",
                                                "needs_data_dir")},
             "size": FULL_SIZES["base"], "max_steps": 70000, "ablations": list(ABLATIONS)},
}

# Throughput against the padding fraction of the batch (one training step, padded vs unpadded).
PADDING = {
    "smoke": {"size": {"n_layer": 4, "n_head": 4, "d_model": 128, "d_ff": 512}, "vocab_size": 2048, "seq_len": 128,
              "batch": 16, "paddings": [0.0, 0.25, 0.5, 0.75], "rounds": 5, "with_hf": True},
    "small": {"size": FULL_SIZES["base"], "vocab_size": 30522, "seq_len": 128, "batch": 64,
              "paddings": [0.0, 0.1, 0.25, 0.5, 0.75], "rounds": 10, "with_hf": True},
    "full": {"size": FULL_SIZES["base"], "vocab_size": 30522, "seq_len": 128, "batch": 256,
             "paddings": [0.0, 0.1, 0.25, 0.5, 0.75], "rounds": 20, "with_hf": True},
}

