"""The CPU rehearsal of the full presets (``python ci/run_notebooks.py --scale full --rehearse --paper mosaicbert``;
``ci/rehearsal.py``): pareto and ablation at scale full, on 2 torchrun nodes, each pretraining run preempted once
after its first periodic checkpoint and resumed (in the ablation, one run padded and one unpadded:
``PREEMPT_KINDS``; the other arms differ only in switches of the forward).

Shrunk (sizes only): MosaicBERT's flavours and transformers' BertForMaskedLM cut to 2 layers of width 32, 4 steps
of global batch 8 (micro-batch 4 per rank), two checkpoints per Pareto run and a periodic checkpoint at step 2 in
the ablation, one pretraining seed of the five, GLUE on 16 training and 8 evaluation rows per task, one epoch of
micro-batch 8 at sequence 64 per task, one finetuning seed per task. Everything else is the full preset's: the
bert-base-uncased tokenizer and config.json read from data_dir, the prepared C4 token caches (``c4_mlm128/``, the
whole validation split evaluated at 15%), the MosaicBERT switches (ALiBi, GLU, unpadding, low-precision LayerNorm;
dropout 0.1), transformers' own BertForMaskedLM as the baseline at 15% masking, DDP, bf16, the decoupled AdamW
recipe, all six ablation arms, and all eight GLUE tasks read from the public formats (the original TSVs for some
tasks, the Hub's parquet shards for others) with the per-task recipes, RTE / MRPC / STS-B started from the MNLI
model and MosaicML's scoring.

padding_throughput (UNLAUNCHED) times training steps in the notebook's process and launches no run; it is
rehearsed at scale full with its batch, sequence and rounds shrunk and BERT-base cut to 2 of its 12 layers.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
from transformers import BertTokenizer

from shared.data.mlm_cache import prepare_mlm_cache
from shared.eval.glue import MOSAICML_GLUE_TASKS
from shared.eval.glue_fixtures import fixture_rows, task_splits, write_glue_fixtures

TINY_MOSAIC = {"n_layer": 2, "n_head": 2, "d_model": 32, "d_ff": 64}
TINY_HF = {"num_hidden_layers": 2, "num_attention_heads": 2, "hidden_size": 32, "intermediate_size": 64}
TRAIN = {"max_steps": 4, "global_batch_size": 8, "micro_batch_size": 4, "log_every": 1, "progress_bar": False}
# every GLUE task: one epoch of the fixture rows, micro-batch 8, one seed (the full recipe keeps its lr, wd, ...)
PER_TASK = {t: {"epochs": 1, "micro_batch_size": 8} for t in MOSAICML_GLUE_TASKS if t != "mnli"}
EVAL = {"task_train": 16, "task_eval": 8, "finetune": {"epochs": 1, "micro_batch_size": 8, "seq_len": 64},
        "per_task": PER_TASK, "seeds": [19], "task_seeds": {t: [19] for t in ("rte", "stsb", "mrpc", "sst2", "cola")}}

# the ablation's arms: one preempted with unpadding, one without (the other switches change the forward only)
PREEMPT_KINDS = {"ablation": ["model.unpad"]}
NOTEBOOKS = {
    "pareto": {
        "models": {"bert": {"base": TINY_HF, "large": TINY_HF},
                   "mosaicbert": {"base": TINY_MOSAIC, "large": TINY_MOSAIC}},
        "reference": {"base": TINY_HF, "large": TINY_HF},
        "train": TRAIN, "micro_batch_size": 4, "checkpoints": 2, "pretrain_seeds": [17], "eval": EVAL,
    },
    "ablation": {
        "model": TINY_MOSAIC, "train": {**TRAIN, "checkpoint_every": 2}, "micro_batch_size": 4, "eval": EVAL,
    },
}
# notebooks that launch no training run (ci/rehearsal.verify would refuse them): their shrinking overrides
UNLAUNCHED = {
    "padding_throughput": {"model": {"flavour": "bert-base", "n_layer": 2}, "micro_batch_size": 4, "seq_len": 32,
                           "rounds": 2},
}

# the bert-base-uncased config.json (the BERT baseline is built from it; its sizes are overridden above)
BERT_BASE_UNCASED_CONFIG = {
    "architectures": ["BertForMaskedLM"], "attention_probs_dropout_prob": 0.1, "gradient_checkpointing": False,
    "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02,
    "intermediate_size": 3072, "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert",
    "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 0, "position_embedding_type": "absolute",
    "transformers_version": "4.6.0.dev0", "type_vocab_size": 2, "use_cache": True, "vocab_size": 30522}
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# GLUE fixture formats: the original TSV release for half the tasks, the Hub's parquet shards for the others
GLUE_FORMATS = {"mnli": "tsv", "cola": "tsv", "qqp": "tsv", "rte": "tsv",
                "sst2": "parquet", "stsb": "parquet", "mrpc": "parquet", "qnli": "parquet"}
WORDS = ("the a of to and in is was for on with as by at from that this it river city market morning school "
         "people year day water garden house road music book story family friend village weather rain sun "
         "walked bought found wrote opened built carried visited painted cooked read heard small old new red "
         "green quiet busy early late near far because while after before then again every some many").split()


def _documents(n: int, seed: int) -> list[str]:
    """C4-like English paragraphs of 1 to 6 sentences (short ones leave padding, as C4 documents do at 128)."""
    rng = np.random.default_rng(seed)
    docs = []
    for _ in range(n):
        sentences = []
        for _ in range(int(rng.integers(1, 7))):
            words = [WORDS[i] for i in rng.integers(len(WORDS), size=int(rng.integers(5, 14)))]
            sentences.append(" ".join(words).capitalize() + ".")
        docs.append(" ".join(sentences))
    return docs


def _write_c4(folder: Path, name: str, docs: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(folder / name, "wt") as f:
        for i, text in enumerate(docs):
            f.write(json.dumps({"text": text, "timestamp": "2019-04-25T12:57:54Z",
                                "url": f"https://example.org/{i}"}) + "\n")


def _glue_texts() -> list[str]:
    texts = []
    for task in MOSAICML_GLUE_TASKS:
        for split in task_splits(task):
            for row in fixture_rows(task, split, 16, 0):
                texts += [v for v in row.values() if isinstance(v, str)]
    return texts


def _save_tokenizer(folder: Path, texts: list[str]) -> BertTokenizer:
    """A WordPiece tokenizer in bert-base-uncased's format (vocab.txt, lower-cased): the special tokens, every
    word of ``texts``, and single characters (with their ``##`` forms) so any other word still splits."""
    words = sorted({w for t in texts for w in t.lower().replace(".", " . ").replace(",", " , ").split()})
    chars = sorted({c for t in texts for c in t.lower() if not c.isspace()})
    vocab = SPECIAL + list(dict.fromkeys(chars + [f"##{c}" for c in chars] + words))
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = BertTokenizer(vocab={token: i for i, token in enumerate(vocab)}, do_lower_case=True,
                              model_max_length=512)
    tokenizer.save_pretrained(str(folder))
    return tokenizer


def make_data_dir(root: Path) -> None:
    """The full presets' data_dir at toy size: ``c4/en/{train,validation}/*.json.gz`` (C4's jsonl.gz records),
    ``c4_mlm128/{train,val}`` (the token caches prepared from them before launch, shared.data.mlm_cache, as the
    preflight requires), ``bert-base-uncased/`` (a WordPiece tokenizer over the toy vocabulary and the model's
    config.json) and ``glue/`` (the eight GLUE tasks of shared.eval.glue_fixtures, TSV and Hub parquet)."""
    root = Path(root)
    train, val = _documents(160, seed=0), _documents(24, seed=1)
    _write_c4(root / "c4" / "en" / "train", "c4-train.00000-of-01024.json.gz", train)
    _write_c4(root / "c4" / "en" / "validation", "c4-validation.00000-of-00008.json.gz", val)
    tokenizer = _save_tokenizer(root / "bert-base-uncased", train + val + _glue_texts())
    (root / "bert-base-uncased" / "config.json").write_text(json.dumps(BERT_BASE_UNCASED_CONFIG, indent=2))
    prepare_mlm_cache(root / "c4" / "en" / "train", tokenizer, 128, root / "c4_mlm128" / "train")
    prepare_mlm_cache(root / "c4" / "en" / "validation", tokenizer, 128, root / "c4_mlm128" / "val")
    write_glue_fixtures(root / "glue", MOSAICML_GLUE_TASKS, rows=16, eval_rows=8, formats=GLUE_FORMATS)
