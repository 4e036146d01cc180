"""Per-domain token loss and perplexity of a causal LM, batched, without gradients.

Each domain's data may be given as
- a LongTensor (N, T) of token ids: position t predicts token t+1 (T-1 predictions per row);
- a list of token-id lists of any lengths (each >= 2): the same shift, padded and masked per batch;
- an iterable of batch dicts {"input_ids": (B, T), "targets": (B, T) optional, "loss_mask": (B, T)
  optional}: with "targets", logits at t are scored against targets[:, t] (targets of -100 and
  loss_mask == 0 are ignored); without, the shift above is applied.
The mean loss is token-weighted over the whole domain; perplexity = exp(mean loss).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ._model_io import logits_of, model_device

IGNORE_INDEX = -100


@dataclass(frozen=True)
class DomainLoss:
    domain: str
    mean_loss: float      # nats per predicted token
    perplexity: float
    tokens: int           # predicted tokens counted


def _shifted(input_ids: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    batch = {"input_ids": input_ids[:, :-1], "targets": input_ids[:, 1:]}
    if mask is not None:
        batch["loss_mask"] = mask[:, 1:]
    return batch


def iter_batches(data, batch_size: int, pad_id: int = 0) -> Iterator[dict[str, torch.Tensor]]:
    """Normalise one domain's data (see module docstring) into batch dicts with targets."""
    if isinstance(data, torch.Tensor):
        if data.dim() != 2 or data.shape[1] < 2:
            raise ValueError(f"token tensor must be (N, T) with T >= 2, got {tuple(data.shape)}")
        for i in range(0, data.shape[0], batch_size):
            yield _shifted(data[i:i + batch_size].long())
        return
    if isinstance(data, (list, tuple)) and (not data or isinstance(data[0], (list, tuple))):
        for i in range(0, len(data), batch_size):
            rows = data[i:i + batch_size]
            if any(len(r) < 2 for r in rows):
                raise ValueError("every token sequence needs at least 2 tokens")
            width = max(len(r) for r in rows)
            ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.bool)
            for j, r in enumerate(rows):
                ids[j, :len(r)] = torch.as_tensor(r, dtype=torch.long)
                mask[j, :len(r)] = True
            yield _shifted(ids, mask)
        return
    if isinstance(data, Iterable):
        for batch in data:
            if not isinstance(batch, Mapping) or "input_ids" not in batch:
                raise ValueError("batches must be dicts with 'input_ids' (and optional 'targets', 'loss_mask')")
            if "targets" in batch:
                yield dict(batch)
            else:
                yield _shifted(batch["input_ids"], batch.get("loss_mask"))
        return
    raise ValueError(f"unsupported domain data of type {type(data).__name__}: expected a (N, T) tensor, "
                     "a list of token lists, or an iterable of batch dicts")


@torch.no_grad()
def batch_loss_sum(model, batch: Mapping[str, torch.Tensor], device: torch.device) -> tuple[float, int]:
    """Summed cross-entropy (nats) and number of counted target tokens of one batch."""
    ids = batch["input_ids"].to(device)
    targets = batch["targets"].to(device).long().clone()
    if "loss_mask" in batch and batch["loss_mask"] is not None:
        targets[~batch["loss_mask"].to(device).bool()] = IGNORE_INDEX
    logits = logits_of(model(ids)).float()                            # (B, T, V)
    if logits.shape[:2] != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} do not match targets {tuple(targets.shape)}")
    loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE_INDEX,
                           reduction="sum")
    return float(loss), int((targets != IGNORE_INDEX).sum())


@torch.no_grad()
def evaluate_perplexity(model, domains: Mapping[str, object], batch_size: int = 8,
                        max_batches: int | None = None, pad_id: int = 0) -> dict[str, DomainLoss]:
    """{domain: DomainLoss} for every domain's data. The model is put in eval mode and restored."""
    if not domains:
        raise ValueError("no domains given")
    device = model_device(model)
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        out = {}
        for name, data in domains.items():
            total, count = 0.0, 0
            for b, batch in enumerate(iter_batches(data, batch_size, pad_id)):
                if max_batches is not None and b >= max_batches:
                    break
                s, n = batch_loss_sum(model, batch, device)
                total, count = total + s, count + n
            if count == 0:
                raise ValueError(f"domain {name!r} has no tokens to score")
            mean = total / count
            out[name] = DomainLoss(name, mean, math.exp(mean) if mean < 700 else math.inf, count)
        return out
    finally:
        if was_training and hasattr(model, "train"):
            model.train()


def perplexity_eval(domains: Mapping[str, object], batch_size: int = 16) -> Callable[[nn.Module], dict[str, float]]:
    """An eval_fn for shared.train.Trainer: {"<domain>_loss": mean token loss} for each named held-out set.

    Each value is any domain data evaluate_perplexity accepts (an (N, T) LongTensor of packed
    windows, token lists, or batch dicts).
    """

    def evaluate(model: nn.Module) -> dict[str, float]:
        result = evaluate_perplexity(model, domains, batch_size=batch_size)
        return {f"{name}_loss": r.mean_loss for name, r in result.items()}

    return evaluate
