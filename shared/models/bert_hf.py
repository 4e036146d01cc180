"""Weight interop between ``shared.models.bert`` and transformers' BERT classes.

    encoder = bert_from_hf(hf_bert, unpad=True)        # BertModel (or a task model's .bert) -> Bert
    mlm = mlm_from_hf(hf_mlm); classifier = classifier_from_hf(hf_cls)
    hf_mlm = mlm_to_hf(mlm)                            # classic configs only

Name mapping (ours <- transformers ``BertModel``; ``bert.`` prefixed inside the task models), layer i:
    embeddings.word / .position / .token_type   <- embeddings.word_embeddings / position_ / token_type_
    embeddings.norm                             <- embeddings.LayerNorm
    blocks.i.attn.qkv  rows                     <- [attention.self.query; .key; .value]   (fused on dim 0)
    blocks.i.attn.proj / blocks.i.norm1         <- attention.output.dense / attention.output.LayerNorm
    blocks.i.mlp.fc / blocks.i.mlp.proj         <- intermediate.dense / output.dense
    blocks.i.norm2                              <- output.LayerNorm
MLM head (BertForMaskedLM): head.dense, head.norm <- cls.predictions.transform.dense / .LayerNorm;
head.decoder.bias <- cls.predictions.bias; the decoder weight is tied to the word embeddings.
Classifier (BertForSequenceClassification): pooler <- bert.pooler.dense, classifier <- classifier.
Our word embeddings (and MLM bias) have padded_vocab_size rows: the first vocab_size are copied,
the padding rows stay zero.
"""
from __future__ import annotations

import dataclasses

import torch

from shared.models.bert import Bert, BertConfig, BertForMaskedLM, BertForSequenceClassification

# BertConfig fields a caller may set on load: they change how the computation runs, not what the
# weights mean (alibi and glu would: the checkpoint has position embeddings and a plain MLP).
LOAD_SWITCHES = ("unpad", "low_precision_norm", "attn_backend", "dropout", "attn_dropout")


def config_from_hf(hf_config, switches: dict | None = None) -> BertConfig:
    """Our BertConfig for a transformers BertConfig, with the load-time switches applied."""
    c = hf_config
    problems = []
    if c.hidden_act != "gelu":
        problems.append(f"hidden_act {c.hidden_act!r} (need 'gelu')")
    if getattr(c, "position_embedding_type", "absolute") != "absolute":
        problems.append(f"position_embedding_type {c.position_embedding_type!r} (need 'absolute')")
    if getattr(c, "is_decoder", False):
        problems.append("is_decoder=True (need an encoder)")
    if problems:
        raise ValueError("cannot import this BERT config: " + "; ".join(problems))
    switches = dict(switches or {})
    bad = sorted(set(switches) - set(LOAD_SWITCHES))
    if bad:
        raise ValueError(f"switches {bad} cannot be set when loading transformers weights (they change what the "
                         f"weights mean or are not switches); valid: {', '.join(LOAD_SWITCHES)}")
    cfg = BertConfig(vocab_size=c.vocab_size, n_layer=c.num_hidden_layers, n_head=c.num_attention_heads,
                     d_model=c.hidden_size, d_ff=c.intermediate_size, max_seq_len=c.max_position_embeddings,
                     type_vocab_size=c.type_vocab_size, pad_token_id=c.pad_token_id or 0,
                     norm_eps=c.layer_norm_eps, dropout=c.hidden_dropout_prob,
                     attn_dropout=c.attention_probs_dropout_prob, init_std=c.initializer_range)
    return dataclasses.replace(cfg, **switches)


def _copy_norm(ours, sd: dict, prefix: str) -> None:
    ours.weight.copy_(sd[prefix + ".weight"])
    ours.bias.copy_(sd[prefix + ".bias"])


def _copy_linear(ours, sd: dict, prefix: str) -> None:
    ours.weight.copy_(sd[prefix + ".weight"])
    ours.bias.copy_(sd[prefix + ".bias"])


@torch.no_grad()
def load_encoder(model, sd: dict, prefix: str) -> None:
    """Copy a transformers BertModel state dict (keys under ``prefix``) into our Bert ``model``."""
    e, vocab = model.embeddings, model.cfg.vocab_size
    e.word.weight[:vocab].copy_(sd[prefix + "embeddings.word_embeddings.weight"])
    e.position.weight.copy_(sd[prefix + "embeddings.position_embeddings.weight"])
    e.token_type.weight.copy_(sd[prefix + "embeddings.token_type_embeddings.weight"])
    _copy_norm(e.norm, sd, prefix + "embeddings.LayerNorm")
    for i, block in enumerate(model.blocks):
        p = f"{prefix}encoder.layer.{i}."
        block.attn.qkv.weight.copy_(torch.cat([sd[p + f"attention.self.{n}.weight"] for n in ("query", "key", "value")]))
        block.attn.qkv.bias.copy_(torch.cat([sd[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")]))
        _copy_linear(block.attn.proj, sd, p + "attention.output.dense")
        _copy_norm(block.norm1, sd, p + "attention.output.LayerNorm")
        _copy_linear(block.mlp.fc, sd, p + "intermediate.dense")
        _copy_linear(block.mlp.proj, sd, p + "output.dense")
        _copy_norm(block.norm2, sd, p + "output.LayerNorm")


def _encoder_of(hf_model):
    """(the transformers BertModel inside hf_model, its state-dict key prefix)."""
    inner = getattr(hf_model, "bert", None)
    return (inner, "bert.") if inner is not None else (hf_model, "")


def _like(model, ref: torch.Tensor):
    return model.to(device=ref.device, dtype=ref.dtype)


def bert_from_hf(hf_model, **switches) -> Bert:
    """transformers BertModel (or the ``.bert`` of BertForMaskedLM / ...ForSequenceClassification) -> our
    Bert, same dtype and device.

    switches: BertConfig fields that keep the weights' meaning (unpad, low_precision_norm,
    attn_backend, dropout, attn_dropout); alibi / glu would change it and are refused."""
    encoder, _ = _encoder_of(hf_model)
    sd = encoder.state_dict()
    model = _like(Bert(config_from_hf(encoder.config, switches)), sd["embeddings.word_embeddings.weight"])
    load_encoder(model, sd, "")
    return model


@torch.no_grad()
def mlm_from_hf(hf_model, **switches) -> BertForMaskedLM:
    """transformers BertForMaskedLM -> our BertForMaskedLM (encoder and head); switches as in bert_from_hf."""
    sd = hf_model.state_dict()
    model = _like(BertForMaskedLM(config_from_hf(hf_model.config, switches)), sd["bert.embeddings.word_embeddings.weight"])
    load_encoder(model.bert, sd, "bert.")
    _copy_linear(model.head.dense, sd, "cls.predictions.transform.dense")
    _copy_norm(model.head.norm, sd, "cls.predictions.transform.LayerNorm")
    model.head.decoder.bias[:model.cfg.vocab_size].copy_(sd["cls.predictions.bias"])
    return model


@torch.no_grad()
def classifier_from_hf(hf_model, **switches) -> BertForSequenceClassification:
    """transformers BertForSequenceClassification -> ours (encoder, pooler, classifier); switches as in
    bert_from_hf."""
    sd = hf_model.state_dict()
    model = _like(BertForSequenceClassification(config_from_hf(hf_model.config, switches), hf_model.config.num_labels),
                  sd["bert.embeddings.word_embeddings.weight"])
    load_encoder(model.bert, sd, "bert.")
    _copy_linear(model.pooler, sd, "bert.pooler.dense")
    _copy_linear(model.classifier, sd, "classifier")
    return model


def hf_config(cfg):
    """transformers BertConfig for a classic (no alibi, no glu) BertConfig."""
    from transformers import BertConfig as HFBertConfig
    if not cfg.is_classic:
        raise ValueError(f"only classic BERT configs export to transformers (alibi=False, glu=False); got "
                         f"alibi={cfg.alibi}, glu={cfg.glu}")
    return HFBertConfig(vocab_size=cfg.vocab_size, hidden_size=cfg.d_model, num_hidden_layers=cfg.n_layer,
                        num_attention_heads=cfg.n_head, intermediate_size=cfg.d_ff, hidden_act="gelu",
                        hidden_dropout_prob=cfg.dropout, attention_probs_dropout_prob=cfg.attn_dropout,
                        max_position_embeddings=cfg.max_seq_len, type_vocab_size=cfg.type_vocab_size,
                        initializer_range=cfg.init_std, layer_norm_eps=cfg.norm_eps, pad_token_id=cfg.pad_token_id)


@torch.no_grad()
def mlm_to_hf(model: BertForMaskedLM):
    """Our BertForMaskedLM (classic config) -> a new transformers BertForMaskedLM, same weights."""
    from transformers import BertForMaskedLM as HFBertForMaskedLM
    cfg = model.cfg
    ref = model.bert.embeddings.word.weight
    hf = HFBertForMaskedLM(hf_config(cfg)).to(device=ref.device, dtype=ref.dtype)
    vocab, d = cfg.vocab_size, cfg.d_model
    bert, e = hf.bert, model.bert.embeddings
    bert.embeddings.word_embeddings.weight.copy_(e.word.weight[:vocab])
    bert.embeddings.position_embeddings.weight.copy_(e.position.weight)
    bert.embeddings.token_type_embeddings.weight.copy_(e.token_type.weight)
    bert.embeddings.LayerNorm.load_state_dict(e.norm.state_dict())
    for block, layer in zip(model.bert.blocks, bert.encoder.layer):
        for name, w, b in zip(("query", "key", "value"), block.attn.qkv.weight.split(d), block.attn.qkv.bias.split(d)):
            getattr(layer.attention.self, name).weight.copy_(w)
            getattr(layer.attention.self, name).bias.copy_(b)
        layer.attention.output.dense.load_state_dict(block.attn.proj.state_dict())
        layer.attention.output.LayerNorm.load_state_dict(block.norm1.state_dict())
        layer.intermediate.dense.load_state_dict(block.mlp.fc.state_dict())
        layer.output.dense.load_state_dict(block.mlp.proj.state_dict())
        layer.output.LayerNorm.load_state_dict(block.norm2.state_dict())
    head = hf.cls.predictions
    head.transform.dense.load_state_dict(model.head.dense.state_dict())
    head.transform.LayerNorm.load_state_dict(model.head.norm.state_dict())
    head.bias.copy_(model.head.decoder.bias[:vocab])
    hf.tie_weights()
    return hf
