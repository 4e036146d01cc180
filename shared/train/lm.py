"""Causal-LM glue between the data pipeline, the decoder and the trainer.

    from shared.train.lm import lm_loss
    from shared.eval.perplexity import perplexity_eval   # the held-out eval_fn (eval sits above train)
    trainer = Trainer(GPT(cfg), lm_loss, mixture, TrainConfig(...),
                      eval_fns={"val": perplexity_eval({"web": web_val, "math": math_val})})

Batches are the dicts of shared.data (Mixture, PackedDataset): input_ids, targets, doc_ids (B, T)
int64 and loss_mask (B, T) bool; an optional stream_ids (B,) names each row's stream.
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

IGNORE_INDEX = -100


def masked_targets(batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """targets (B, T) with positions where loss_mask is False set to IGNORE_INDEX."""
    targets = batch["targets"]
    mask = batch.get("loss_mask")
    return targets if mask is None else targets.masked_fill(~mask.bool(), IGNORE_INDEX)


def lm_loss(model: nn.Module, batch: Mapping[str, torch.Tensor], use_doc_mask: bool = True):
    """Mean next-token cross-entropy over the loss-masked tokens of a packed batch.

    The model is called as model(input_ids, doc_ids, targets=...) and returns a ModelOutput whose
    loss is the scalar loss (shared.models.gpt.GPT's fused LM-head loss).
    Returns (loss, {"num_tokens": predicted tokens}).
    """
    targets = masked_targets(batch)
    doc_ids = batch.get("doc_ids") if use_doc_mask else None
    loss = model(batch["input_ids"], doc_ids, targets=targets).loss
    return loss, {"num_tokens": int((targets != IGNORE_INDEX).sum())}


def hf_lm_loss(model: nn.Module, batch: Mapping[str, torch.Tensor]):
    """lm_loss for a transformers causal LM: mean cross-entropy of its (B, T, V) logits against the
    loss-masked (B, T) targets (already shifted: logits at t are scored against targets[:, t]).
    Returns (loss, {"num_tokens": predicted tokens})."""
    targets = masked_targets(batch).long()
    logits = model(input_ids=batch["input_ids"].long()).logits
    loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX)
    return loss, {"num_tokens": int((targets != IGNORE_INDEX).sum())}

