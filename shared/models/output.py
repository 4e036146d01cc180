"""One output contract for the top-level model forwards.

Every top-level model (GPT, BertForMaskedLM, BertForSequenceClassification, the vision classifiers
built by ``shared.models.vision.build_vision_model``, TextToImageDiffusion) returns a
:class:`ModelOutput`, so trainers, evaluators and notebooks read ``out.logits`` / ``out.loss`` the
same way whatever the family.
Field order is (logits, loss); a field a forward does not compute is ``None``.
"""
from __future__ import annotations

from typing import NamedTuple

from torch import Tensor


class ModelOutput(NamedTuple):
    """What a top-level model forward returns.

    logits: the model's unnormalised scores, or None where the forward does not materialise them:
        - GPT: (B, S, vocab_size) without targets; None with targets (the fused, chunked LM-head
          loss never builds the full logits).
        - BertForMaskedLM: (B, S, vocab_size) without labels; with labels (B, S) only the M masked
          positions are projected: (M, vocab_size), rows in the order of ``labels[labels != -100]``.
        - BertForSequenceClassification: (B, num_labels).
        - vision classifiers: (B, num_classes).
        - TextToImageDiffusion: None (its forward is the training loss; the UNet's noise prediction
          is not logits and is read through ``predict``).
    loss: a scalar tensor (mean over the predicted positions / examples) when the forward was given
        targets or labels (always for TextToImageDiffusion, whose forward is its loss), else None.
    """

    logits: Tensor | None
    loss: Tensor | None
