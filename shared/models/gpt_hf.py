"""Weight interop between ``shared.models.gpt.GPT`` and transformers' ``LlamaForCausalLM``.

    model = gpt_from_llama(hf_model)      # LlamaForCausalLM -> GPT (same weights, dtype, device)
    hf_model = gpt_to_llama(model)        # GPT (Llama-shaped config) -> a new LlamaForCausalLM

Llama = our GPT with position="rope", norm="rmsnorm", mlp="swiglu", bias=False. Name mapping
(ours <- transformers), per layer i:
    blocks.i.norm1            <- model.layers.i.input_layernorm
    blocks.i.attn.qkv  rows   <- [q_proj; k_proj; v_proj]           (fused, concatenated on dim 0)
    blocks.i.attn.proj        <- self_attn.o_proj
    blocks.i.norm2            <- post_attention_layernorm
    blocks.i.mlp.fc    rows   <- [gate_proj; up_proj]               (fused)
    blocks.i.mlp.proj         <- mlp.down_proj
    wte / norm_f / lm_head    <- model.embed_tokens / model.norm / lm_head   (first vocab_size rows)
Both sides use the rotate-half RoPE layout, so q/k need no permutation. Dropout is a training-time
setting and is not exported (transformers' Llama has only attention dropout, left at 0).
"""
from __future__ import annotations

import torch

from shared.models.gpt import GPT, GPTConfig


def _rope_theta(hf_config) -> float:
    params = getattr(hf_config, "rope_parameters", None) or {}
    rope_type = params.get("rope_type", params.get("type", "default"))
    scaling = getattr(hf_config, "rope_scaling", None)  # transformers < 5
    if rope_type != "default" or (isinstance(scaling, dict) and scaling.get("rope_type", scaling.get("type"))
                                  not in (None, "default")):
        raise ValueError(f"only default RoPE is supported, got rope_parameters={params}, rope_scaling={scaling}")
    return float(params.get("rope_theta", getattr(hf_config, "rope_theta", 10000.0)))


def config_from_llama(hf_config) -> GPTConfig:
    """The GPTConfig of a transformers LlamaConfig (refuses what our GPT cannot represent)."""
    c = hf_config
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    problems = []
    if head_dim * c.num_attention_heads != c.hidden_size:
        problems.append(f"head_dim {head_dim} * heads {c.num_attention_heads} != hidden_size {c.hidden_size}")
    if c.hidden_act != "silu":
        problems.append(f"hidden_act {c.hidden_act!r} (need 'silu')")
    if getattr(c, "attention_bias", False) or getattr(c, "mlp_bias", False):
        problems.append("attention_bias / mlp_bias (need no biases)")
    if problems:
        raise ValueError("cannot import this Llama config: " + "; ".join(problems))
    return GPTConfig(vocab_size=c.vocab_size, n_layer=c.num_hidden_layers, n_head=c.num_attention_heads,
                     n_kv_head=c.num_key_value_heads or c.num_attention_heads, d_model=c.hidden_size,
                     d_ff=c.intermediate_size, max_seq_len=c.max_position_embeddings, position="rope",
                     norm="rmsnorm", mlp="swiglu", tie_embeddings=bool(c.tie_word_embeddings), bias=False,
                     rope_theta=_rope_theta(c), norm_eps=c.rms_norm_eps)


@torch.no_grad()
def gpt_from_llama(hf_model) -> GPT:
    """LlamaForCausalLM -> GPT with the same weights, dtype and device."""
    cfg = config_from_llama(hf_model.config)
    ref = hf_model.lm_head.weight
    model = GPT(cfg).to(device=ref.device, dtype=ref.dtype)
    sd = hf_model.state_dict()
    vocab = cfg.vocab_size
    model.wte.weight[:vocab].copy_(sd["model.embed_tokens.weight"])
    if not cfg.tie_embeddings:
        model.lm_head.weight[:vocab].copy_(sd["lm_head.weight"])
    model.norm_f.weight.copy_(sd["model.norm.weight"])
    for i, block in enumerate(model.blocks):
        p = f"model.layers.{i}."
        block.norm1.weight.copy_(sd[p + "input_layernorm.weight"])
        block.norm2.weight.copy_(sd[p + "post_attention_layernorm.weight"])
        block.attn.qkv.weight.copy_(torch.cat([sd[p + f"self_attn.{n}_proj.weight"] for n in "qkv"], dim=0))
        block.attn.proj.weight.copy_(sd[p + "self_attn.o_proj.weight"])
        block.mlp.fc.weight.copy_(torch.cat([sd[p + "mlp.gate_proj.weight"], sd[p + "mlp.up_proj.weight"]], dim=0))
        block.mlp.proj.weight.copy_(sd[p + "mlp.down_proj.weight"])
    return model


@torch.no_grad()
def gpt_to_llama(model: GPT):
    """GPT (Llama-shaped config) -> a new LlamaForCausalLM with the same weights, dtype and device."""
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = model.cfg
    if not cfg.is_llama_shaped:
        raise ValueError("gpt_to_llama() needs a Llama-shaped config: position='rope', norm='rmsnorm', mlp='swiglu', "
                         f"bias=False; got position={cfg.position!r}, norm={cfg.norm!r}, mlp={cfg.mlp!r}, "
                         f"bias={cfg.bias}")
    hf_cfg = LlamaConfig(vocab_size=cfg.vocab_size, hidden_size=cfg.d_model, intermediate_size=cfg.d_ff,
                         num_hidden_layers=cfg.n_layer, num_attention_heads=cfg.n_head,
                         num_key_value_heads=cfg.n_kv_head, head_dim=cfg.head_dim, hidden_act="silu",
                         max_position_embeddings=cfg.max_seq_len, rms_norm_eps=cfg.norm_eps,
                         tie_word_embeddings=cfg.tie_embeddings, attention_bias=False, mlp_bias=False,
                         rope_parameters={"rope_type": "default", "rope_theta": cfg.rope_theta},
                         initializer_range=cfg.init_std)
    ref = model.wte.weight
    hf = LlamaForCausalLM(hf_cfg).to(device=ref.device, dtype=ref.dtype)
    vocab, h, kv, d = cfg.vocab_size, cfg.n_head, cfg.n_kv_head, cfg.head_dim
    hf.model.embed_tokens.weight.copy_(model.wte.weight[:vocab])
    if not cfg.tie_embeddings:
        hf.lm_head.weight.copy_(model.lm_head.weight[:vocab])
    hf.model.norm.weight.copy_(model.norm_f.weight)
    for block, layer in zip(model.blocks, hf.model.layers):
        layer.input_layernorm.weight.copy_(block.norm1.weight)
        layer.post_attention_layernorm.weight.copy_(block.norm2.weight)
        q, k, v = block.attn.qkv.weight.split([h * d, kv * d, kv * d], dim=0)
        layer.self_attn.q_proj.weight.copy_(q)
        layer.self_attn.k_proj.weight.copy_(k)
        layer.self_attn.v_proj.weight.copy_(v)
        layer.self_attn.o_proj.weight.copy_(block.attn.proj.weight)
        gate, up = block.mlp.fc.weight.chunk(2, dim=0)
        layer.mlp.gate_proj.weight.copy_(gate)
        layer.mlp.up_proj.weight.copy_(up)
        layer.mlp.down_proj.weight.copy_(block.mlp.proj.weight)
    return hf
