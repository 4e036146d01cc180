"""What one model costs to train: parameters, FLOPs and activation memory per sample.

Parameters are counted exactly by building the model on the meta device (``torch.device("meta")``:
shapes without storage, so a 7B model costs milliseconds and no memory) and summing ``numel`` of
the distinct parameters. LoRA's trainable parameters are r * (d_in + d_out) per targeted matrix.

FLOPs per token of a decoder or encoder: the model's own PaLM accounting (Chowdhery et al. 2022,
App. B), 6 N + 12 L H Q T, as the trainer reports MFU with. A frozen base under LoRA does the
forward (2 N) and the backward through the activations (2 N) but no weight gradients: 4 N + 6 N_lora.
Other modules (UNet, convnets) are traced on the meta device under ``torch.utils.flop_counter``:
a training step is 3 x the forward of the trained module (backward = 2 x forward), 1 x for frozen ones.

Activations of a transformer layer (elements saved for the backward, per sample of s tokens, width
h, MLP width f, query heads a, kv-to-query head ratio g), after Korthikanti et al. 2022, "Reducing
Activation Recomputation in Large Transformer Models", Sec. 4.1, Eq. (1), generalised to GQA,
any MLP width and gated MLPs:

    norm inputs 2 s h + qkv input s h + q, k, v (1 + 2 g) s h + attention output s h + fc1 input s h
    + MLP: 2 s f (activation input, fc2 input) or, gated, 4 s f (gate, up, act(gate), product)
    + with materialised attention scores (no flash / memory-efficient kernel): a s^2 (softmax
      output), 2 a s^2 with attention dropout; dropout masks: 1 byte per element, 2 s h per layer.

With f = 4h, g = 1, 2-byte activations and dropout this is the paper's 34 s h + 5 a s^2 bytes. Two
terms of this repo's modules, measured: an RMSNorm keeps its normalised input as well as its input
(+s h per norm), and RoPE keeps q and k before the rotation (+(1 + g) s h). Full
activation checkpointing of every layer (the paper's "full recomputation") keeps each layer's input
(s h) and, during the backward, one layer's activations at a time. Outside the layers: the
embedding output and the final norm's input and output (3 s h); a head that materialises logits
(transformers' models) adds s V x 10 bytes (bf16 logits, their fp32 copy kept by the loss, and the
fp32 gradient); the repo's GPT uses a fused chunked loss (shared.kernels.linear_cross_entropy) that
keeps no (tokens, vocab) tensor.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from shared.models.bert import BertConfig, BertForMaskedLM
from shared.models.gpt import GPT, GPTConfig

LORA_TARGETS = {"attention": ("q", "k", "v", "o"), "mlp": ("gate", "up", "down"),
                "all": ("q", "k", "v", "o", "gate", "up", "down")}
HF_LOGIT_BYTES = 10        # bf16 logits + fp32 copy saved by the loss + fp32 gradient, per logit


@dataclass(frozen=True)
class ModelCost:
    """One model's training cost per sample (a sequence of ``tokens_per_sample`` tokens, or an image).

    params / trainable_params: distinct parameters (all / updated by the optimizer).
    flops_per_sample: training FLOPs (forward + backward) of one sample.
    activation_elements / checkpointed_activation_elements: elements saved for the backward per
    sample, without / with per-layer activation checkpointing (bytes = elements x activation bytes).
    mask_bytes: 1-byte dropout masks per sample; logits_bytes: a materialised LM head's logits.
    block_params: parameters of the largest block FSDP shards as one unit.
    """
    name: str
    params: int
    trainable_params: int
    flops_per_sample: float
    activation_elements: float
    checkpointed_activation_elements: float
    block_params: int
    tokens_per_sample: int | None = None
    mask_bytes: float = 0.0
    logits_bytes: float = 0.0
    counted_by: str = ""

    @property
    def flops_per_token(self) -> float | None:
        return None if not self.tokens_per_sample else self.flops_per_sample / self.tokens_per_sample

    def activation_bytes(self, act_bytes: int, checkpointing: bool) -> float:
        """Bytes saved for the backward per sample at ``act_bytes`` bytes an element."""
        elements = self.checkpointed_activation_elements if checkpointing else self.activation_elements
        return elements * act_bytes + (0.0 if checkpointing else self.mask_bytes) + self.logits_bytes


# ----------------------------------------------------------------------------------------- counting
def on_meta(build: Callable[[], nn.Module]) -> nn.Module:
    """``build()`` with every tensor on the meta device (no storage, exact shapes)."""
    with torch.device("meta"):
        return build()


def distinct_params(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements, shared (tied) tensors once."""
    seen = {id(p): p for p in module.parameters() if p.requires_grad or not trainable_only}
    return sum(p.numel() for p in seen.values())


def largest_block(blocks: Sequence[nn.Module]) -> int:
    return max((distinct_params(b) for b in blocks), default=0)


def transformer_layer_activations(seq: int, d_model: int, n_head: int, d_ff: int, *, kv_ratio: float = 1.0,
                                  gated: bool = False, dropout: bool = False, attn_dropout: bool = False,
                                  scores_saved: bool = False, rmsnorm: bool = False,
                                  rope: bool = False) -> tuple[float, float]:
    """(elements, mask bytes) one transformer layer saves per sample of ``seq`` tokens (module docstring).
    rmsnorm: the norms are RMSNorms that keep their normalised input too (+s h each, as
    shared.kernels.norms.RMSNorm does); rope: q and k are also kept before the rotation (+(1 + g) s h)."""
    elements = seq * d_model * (6 + 2 * kv_ratio) + seq * d_ff * (4 if gated else 2)
    elements += seq * d_model * ((2 if rmsnorm else 0) + ((1 + kv_ratio) if rope else 0))
    masks = 2 * seq * d_model if dropout else 0.0
    if scores_saved:
        elements += n_head * seq * seq * (2 if attn_dropout else 1)
        masks += n_head * seq * seq if attn_dropout else 0.0
    return float(elements), float(masks)


def _transformer_cost(name: str, *, params: int, trainable: int, flops_per_token: float, seq: int, n_layer: int,
                      d_model: int, layer: tuple[float, float], block_params: int, logits_bytes: float,
                      counted_by: str) -> ModelCost:
    per_layer, masks = layer
    outside = 3 * seq * d_model
    return ModelCost(name, params, trainable, flops_per_token * seq, n_layer * per_layer + outside,
                     n_layer * seq * d_model + per_layer + outside, block_params, seq, n_layer * masks,
                     logits_bytes, counted_by)


def lora_params(cfg: GPTConfig, rank: int, targets: str) -> int:
    """Trainable LoRA parameters: r * (d_in + d_out) for each targeted matrix of every layer."""
    if targets not in LORA_TARGETS:
        raise ValueError(f"unknown LoRA targets {targets!r}; valid: {', '.join(LORA_TARGETS)}")
    h, kv = cfg.d_model, cfg.n_kv_head * cfg.head_dim
    shapes = {"q": (h, cfg.n_head * cfg.head_dim), "k": (h, kv), "v": (h, kv), "o": (cfg.n_head * cfg.head_dim, h),
              "gate": (h, cfg.d_ff), "up": (h, cfg.d_ff), "down": (cfg.d_ff, h)}
    return cfg.n_layer * sum(rank * sum(shapes[t]) for t in LORA_TARGETS[targets])


_GPT_COUNTS: dict[str, tuple[int, int, int]] = {}


def gpt_counts(cfg: GPTConfig) -> tuple[int, int, int]:
    """(params, non-embedding params, largest block's params) of a decoder built on the meta device
    (cached by config: a 7B build takes seconds on a loaded machine)."""
    key = repr(cfg)
    if key not in _GPT_COUNTS:
        model = on_meta(lambda: GPT(cfg))
        _GPT_COUNTS[key] = (model.num_params(), model.num_params(exclude_embeddings=True), largest_block(model.blocks))
    return _GPT_COUNTS[key]


def gpt_flops_per_token(cfg: GPTConfig, seq_len: int) -> float:
    """GPT.flops_per_token's accounting from the counts: 6 N + 12 L H Q T, N = non-embedding params +
    the LM head's d_model x vocab_size."""
    n = gpt_counts(cfg)[1] + cfg.d_model * cfg.vocab_size
    return 6.0 * n + 12.0 * cfg.n_layer * cfg.n_head * cfg.head_dim * seq_len


def gpt_cost(cfg: GPTConfig, seq_len: int, *, name: str = "gpt", lora: tuple[int, str] | None = None,
             materialised_logits: bool = False, scores_saved: bool = False) -> ModelCost:
    """A decoder's cost per sequence of ``seq_len`` tokens. lora: (rank, targets) for a frozen base;
    materialised_logits: the head computes (seq, vocab) logits (transformers' models do)."""
    params, non_embedding, block = gpt_counts(cfg)
    flops = gpt_flops_per_token(cfg, seq_len)
    trainable = params
    if lora is not None:
        trainable = lora_params(cfg, *lora)
        n = non_embedding + cfg.d_model * cfg.vocab_size
        flops = flops - 6.0 * n + 4.0 * n + 6.0 * trainable
    layer = transformer_layer_activations(seq_len, cfg.d_model, cfg.n_head, cfg.d_ff,
                                          kv_ratio=cfg.n_kv_head / cfg.n_head, gated=cfg.mlp == "swiglu",
                                          dropout=cfg.dropout > 0, attn_dropout=cfg.dropout > 0,
                                          scores_saved=scores_saved, rmsnorm=cfg.norm == "rmsnorm",
                                          rope=cfg.position == "rope")
    logits = seq_len * cfg.vocab_size * HF_LOGIT_BYTES if materialised_logits else 0.0
    how = "meta-device GPT; PaLM FLOPs" + ("; LoRA 4N + 6N_lora" if lora else "")
    return _transformer_cost(name, params=params, trainable=trainable, flops_per_token=flops, seq=seq_len,
                             n_layer=cfg.n_layer, d_model=cfg.d_model, layer=layer, block_params=block,
                             logits_bytes=logits, counted_by=how)


def bert_cost(cfg: BertConfig, seq_len: int, *, name: str = "bert", scores_saved: bool = False) -> ModelCost:
    """An MLM encoder's cost per sequence of ``seq_len`` tokens (the MLM head's logits are counted
    over every position: an upper bound where only masked positions are scored)."""
    model = on_meta(lambda: BertForMaskedLM(cfg))
    params = distinct_params(model)
    flops = float(model.flops_per_token(seq_len))
    layer = transformer_layer_activations(seq_len, cfg.d_model, cfg.n_head, cfg.d_ff, gated=cfg.glu,
                                          dropout=cfg.dropout > 0, attn_dropout=cfg.attn_dropout > 0,
                                          scores_saved=scores_saved)
    blocks = [m for m in model.modules() if type(m).__name__ == "BertBlock"]
    return _transformer_cost(name, params=params, trainable=params, flops_per_token=flops, seq=seq_len,
                             n_layer=cfg.n_layer, d_model=cfg.d_model, layer=layer,
                             block_params=largest_block(blocks),
                             logits_bytes=seq_len * cfg.padded_vocab_size * HF_LOGIT_BYTES,
                             counted_by="meta-device BertForMaskedLM; PaLM FLOPs")


# ------------------------------------------------------------------------------------ traced modules
def traced_forward(module: nn.Module, inputs: Sequence[torch.Tensor] | Callable[[], Sequence],
                   trainable: bool = True) -> tuple[float, float]:
    """(forward FLOPs, activation elements saved for the backward) of ``module(*inputs)`` on the meta
    device. Saved tensors are counted once each (by identity), parameters left out; with
    ``trainable=False`` nothing is saved (a frozen module runs under no_grad)."""
    params = {id(p) for p in module.parameters()}
    saved: dict[int, torch.Tensor] = {}

    def pack(t: torch.Tensor):
        if id(t) not in params and t.is_floating_point():
            saved[id(t)] = t
        return t

    args = inputs() if callable(inputs) else inputs
    with FlopCounterMode(display=False) as counter:
        if trainable:
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                module(*args)
        else:
            with torch.no_grad():
                module(*args)
    return float(counter.get_total_flops()), float(sum(t.numel() for t in saved.values()))


def traced_cost(name: str, trained: nn.Module, inputs: Sequence[torch.Tensor] | Callable[[], Sequence],
                *, frozen: Sequence[tuple[nn.Module, Sequence[torch.Tensor]]] = (),
                also_trained: Sequence[tuple[nn.Module, Sequence[torch.Tensor]]] = (),
                blocks: Sequence[nn.Module] = (), samples_per_trace: int = 1) -> ModelCost:
    """A model's cost per sample from meta-device forwards of ``samples_per_trace`` samples (call it
    under ``torch.device("meta")``): training FLOPs 3 x the forward of ``trained`` and of each module in
    ``also_trained`` (e.g. a text tower trained jointly), plus 1 x each frozen module's (text
    encoders, autoencoders); activations: the tensors the trained forwards save. With per-block
    checkpointing the blocks' inputs stay and one block's activations at a time: estimated as the
    largest block's share of the parameters plus 10% for the block boundaries."""
    flops, elements = traced_forward(trained, inputs)
    for module, args in also_trained:
        more_flops, more_elements = traced_forward(module, args)
        flops, elements = flops + more_flops, elements + more_elements
    frozen_flops = sum(traced_forward(m, x, trainable=False)[0] for m, x in frozen)
    modules = [trained] + [m for m, _ in also_trained]
    trainable = sum(distinct_params(m, trainable_only=True) for m in modules)
    params = sum(distinct_params(m) for m in modules) + sum(distinct_params(m) for m, _ in frozen)
    per = float(samples_per_trace)
    block = largest_block(blocks) if blocks else distinct_params(trained)
    share = block / max(1, distinct_params(trained))
    checkpointed = elements * min(1.0, share + 0.1)
    return ModelCost(name, params, trainable, (3 * flops + frozen_flops) / per, elements / per, checkpointed / per,
                     block, None, 0.0, 0.0, "meta-device trace (torch.utils.flop_counter, saved-tensor hooks)")


__all__ = ["HF_LOGIT_BYTES", "LORA_TARGETS", "ModelCost", "bert_cost", "distinct_params", "gpt_cost", "gpt_counts",
           "gpt_flops_per_token",
           "largest_block", "lora_params", "on_meta", "traced_cost", "traced_forward",
           "transformer_layer_activations"]
