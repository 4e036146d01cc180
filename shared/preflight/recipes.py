"""Plans of the recipes several papers share: MLM pretraining of an encoder and its GLUE-style
finetuning; runs of small image classifiers (the vision papers).

The vocabulary is the tokenizer's: the preset's data ``vocab_size`` where it trains one, else
bert-base-uncased's 30,522 (the full presets read that tokenizer from data_dir).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from shared.models.flavours import resolve_model_config
from shared.models.vision import build_vision_model

from .estimate import bert_cost, traced_cost
from .plan import DataRequirement, TrainingRunPlan, run_plan

BERT_UNCASED_VOCAB = 30522


def encoder_vocab(data: Any) -> int:
    """The vocabulary an MLM data spec's tokenizer has (module docstring)."""
    return getattr(data, "vocab_size", None) or BERT_UNCASED_VOCAB


def mlm_pretrain_plan(name: str, model: str | Mapping[str, Any], data: Any, train: Any, micro_batch_size: int,
                      *, count: int = 1, switches: Mapping[str, Any] | None = None, note: str = "") -> TrainingRunPlan:
    """One MLM pretraining run of ``model`` (a bert flavour or BertConfig fields) on sequences of data.seq_len."""
    cfg = resolve_model_config(model, "bert", vocab_size=encoder_vocab(data), **dict(switches or {}))
    cost = bert_cost(cfg, data.seq_len or cfg.max_seq_len, name=name)
    fields = train.to_dict() if hasattr(train, "to_dict") else dict(train)
    return run_plan(name, cost, {**fields, "micro_batch_size": micro_batch_size}, count=count, note=note)


def finetune_plan(name: str, model: str | Mapping[str, Any], data: Any, finetune: Any, *, count: int,
                  switches: Mapping[str, Any] | None = None) -> TrainingRunPlan:
    """``count`` finetuning runs (tasks x seeds x checkpoints) of one encoder, each in one process:
    max_steps of micro_batch_size sequences of finetune.seq_len, AdamW (shared.eval.glue.FinetuneConfig)."""
    cfg = resolve_model_config(model, "bert", vocab_size=encoder_vocab(data), **dict(switches or {}))
    cost = bert_cost(cfg, finetune.seq_len, name=name)
    train = {"max_steps": finetune.max_steps, "global_batch_size": None, "micro_batch_size": finetune.micro_batch_size,
             "optimizer": "adamw", "lr": finetune.lr, "weight_decay": finetune.weight_decay,
             "weight_decay_scaling": "schedule", "precision": "bf16", "parallelism": "none"}
    return run_plan(name, cost, train, count=count, note="one process each; the MLM head's cost stands in "
                                                         "for the classifier's (an upper bound)")


def mlm_requirements(data: Any, glue_dir: str | None) -> list[DataRequirement]:
    """A "cache" MLM data spec's token caches and tokenizer, and the GLUE folder, under data_dir."""
    reqs = []
    if getattr(data, "kind", None) == "cache":
        reqs += [DataRequirement(data.train_dir, "dir", "training token cache (prepare it before launch)"),
                 DataRequirement(data.eval_dir, "dir", "held-out token cache"),
                 DataRequirement(data.tokenizer_dir, "tokenizer", "tokenizer")]
    if glue_dir and "{data_dir}" in glue_dir:
        reqs.append(DataRequirement(glue_dir, "dir", "GLUE tasks"))
    return reqs




# where shared.data.images.load_cifar10 finds the binary version's test batch (any of these)
CIFAR10_TEST = "test_batch.bin|cifar-10-batches-bin/test_batch.bin|cifar10/cifar-10-batches-bin/test_batch.bin"
# where shared.data.images.load_cifar100 finds the binary version's test file
CIFAR100_TEST = "test.bin|cifar-100-binary/test.bin|cifar100/cifar-100-binary/test.bin"
# (channels, side, classes, training examples) of the image sets (shared.pipelines.vision_classification)
IMAGE_SETS = {"cifar10": (3, 32, 10, 50_000), "cifar100": (3, 32, 100, 50_000), "digits": (1, 8, 10, 1_258)}


def image_shape(data: Any) -> tuple[int, int, int, int]:
    """(channels, side, classes, training examples) of an ImageDataSpec (grayscale: one channel)."""
    channels, side, classes, examples = IMAGE_SETS.get(data.name, (3, getattr(data, "image_size", 32), 10,
                                                                   getattr(data, "n_examples", 0) or 0))
    return (1 if getattr(data, "grayscale", False) else channels), side, classes, examples


def vision_plan(name: str, model: str | Mapping[str, Any], shape: tuple[int, int, int], train: Mapping[str, Any],
                max_steps: int, *, count: int = 1, note: str = "") -> TrainingRunPlan:
    """``count`` runs of a small image classifier (a vision flavour or VisionConfig fields) on images
    of ``shape`` = (channels, size, classes), each in one process: max_steps of global_batch_size
    images, SGD (coupled L2: lr x wd per step; momentum: 4 bytes of state) or the shared trainer's
    decoupled AdamW (wd x lr_t / lr_peak: wd per step at peak)."""
    channels, size, classes = shape
    cfg = resolve_model_config(model, "vision", in_channels=channels, image_size=size, num_classes=classes)
    with torch.device("meta"):
        net = build_vision_model(cfg)
        cost = traced_cost(name, net, (torch.empty(1, channels, size, size),))
    optimizer = train.get("optimizer", "adamw")
    if optimizer == "sgd" and not train.get("momentum"):
        optimizer = "sgd-nomomentum"
    fields = {"max_steps": max_steps, "global_batch_size": None, "micro_batch_size": train["global_batch_size"],
              "optimizer": optimizer, "lr": train["lr"], "weight_decay": train.get("weight_decay", 0.0),
              "weight_decay_scaling": "lr" if optimizer.startswith("sgd") else "schedule", "precision": "fp32",
              "parallelism": "none"}
    return run_plan(name, cost, fields, count=count, note=note)


__all__ = ["BERT_UNCASED_VOCAB", "encoder_vocab", "finetune_plan", "mlm_pretrain_plan", "mlm_requirements",
           "CIFAR10_TEST", "CIFAR100_TEST", "IMAGE_SETS", "image_shape", "vision_plan"]
