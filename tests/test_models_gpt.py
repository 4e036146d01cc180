"""GPT decoder: transformers Llama interop, every config switch, packed documents, generation."""
import itertools

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from shared.models.gpt import GPT, GPTConfig
from shared.models.gpt_hf import gpt_from_llama, gpt_to_llama
from shared.models.rope import positions_from_doc_ids

pytestmark = pytest.mark.usefixtures("one_torch_thread")   # tests/conftest.py


TINY = dict(vocab_size=100, n_layer=2, n_head=4, d_model=32, max_seq_len=32)


def tiny(**overrides) -> GPT:
    torch.manual_seed(0)
    model = GPT(GPTConfig(**{**TINY, **overrides}))
    with torch.no_grad():  # non-trivial norm weights, so a swapped norm would show
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    return model


def ids(batch=2, seq=12, vocab=100, seed=1):
    return torch.randint(0, vocab, (batch, seq), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("n_kv_head,tie", [(4, False), (2, False), (1, True)])
def test_to_hf_logits_match(n_kv_head, tie):
    model = tiny(n_kv_head=n_kv_head, tie_embeddings=tie).eval()
    hf = gpt_to_llama(model).eval()
    assert hf.config.num_key_value_heads == n_kv_head and hf.config.tie_word_embeddings == tie
    x = ids()
    with torch.no_grad():
        torch.testing.assert_close(hf(x).logits, model(x).logits, atol=1e-5, rtol=0)


@pytest.mark.parametrize("n_kv_head,tie", [(4, False), (2, True)])
def test_from_hf_random_llama_logits_match_and_round_trip(n_kv_head, tie):
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=90, hidden_size=32, intermediate_size=80, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=n_kv_head, max_position_embeddings=32,
                      rms_norm_eps=1e-6, rope_parameters={"rope_type": "default", "rope_theta": 500.0},
                      tie_word_embeddings=tie)
    hf = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        for layer in hf.model.layers:
            layer.input_layernorm.weight.uniform_(0.5, 1.5)
    model = gpt_from_llama(hf).eval()
    assert model.cfg.padded_vocab_size == 128 and model.cfg.rope_theta == 500.0 and model.cfg.d_ff == 80
    assert model.cfg.tie_embeddings == tie and (model.lm_head.weight is model.wte.weight) == tie
    x = ids(vocab=90)
    with torch.no_grad():
        torch.testing.assert_close(model(x).logits, hf(x).logits, atol=1e-5, rtol=0)
    back = gpt_to_llama(model)
    hf_sd, back_sd = hf.state_dict(), back.state_dict()
    assert hf_sd.keys() == back_sd.keys()
    for key in hf_sd:
        assert torch.equal(hf_sd[key], back_sd[key]), key


def test_to_hf_rejects_non_llama_configs():
    for overrides in (dict(position="alibi"), dict(norm="layernorm"), dict(mlp="gelu"), dict(bias=True)):
        with pytest.raises(ValueError, match="Llama-shaped"):
            gpt_to_llama(tiny(**overrides))


def test_vocab_is_padded_internally_and_sliced_in_logits():
    model = tiny(vocab_size=100)
    assert model.wte.weight.shape[0] == 128 and model.lm_head.weight.shape[0] == 128
    assert model(ids()).logits.shape == (2, 12, 100)
    assert tiny(vocab_size=128)(ids()).logits.shape == (2, 12, 128)


SWITCHES = list(itertools.product(["rope", "alibi", "learned"], ["layernorm", "rmsnorm"], ["gelu", "swiglu"],
                                  [False, True], [False, True]))


@pytest.mark.parametrize("position,norm,mlp,bias,tie", SWITCHES)
def test_every_switch_combination_trains(position, norm, mlp, bias, tie):
    model = tiny(position=position, norm=norm, mlp=mlp, bias=bias, tie_embeddings=tie, n_kv_head=2,
                 low_precision_norm=bias, dropout=0.1 if tie else 0.0)
    x, doc_ids = ids(), torch.tensor([[0] * 5 + [1] * 7, [0] * 12])
    logits = model(x, doc_ids=doc_ids).logits
    assert logits.shape == (2, 12, 100)
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), x[:, 1:].flatten())
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.blocks[0].attn.qkv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("position", ["rope", "alibi", "learned"])
def test_packed_documents_are_isolated_and_positions_restart(position):
    model = tiny(position=position).eval()
    doc_a, doc_b = ids(1, 5, seed=2), ids(1, 7, seed=3)
    packed = torch.cat([doc_a, doc_b], dim=1)
    doc_ids = torch.tensor([[0] * 5 + [1] * 7])
    with torch.no_grad():
        out = model(packed, doc_ids=doc_ids).logits
        # doc b in the pack == doc b alone (same positions 0..6, no leak from doc a)
        torch.testing.assert_close(out[:, 5:], model(doc_b).logits, atol=1e-5, rtol=0)
        torch.testing.assert_close(out[:, :5], model(doc_a).logits, atol=1e-5, rtol=0)
        without_docs = model(packed).logits
    assert (without_docs[:, 5:] - out[:, 5:]).abs().max() > 1e-3  # the mask is doing something
    assert positions_from_doc_ids(torch.tensor([[3, 3, 4, 4, 4, 9]])).tolist() == [[0, 1, 0, 1, 2, 0]]


@pytest.mark.parametrize("position", ["rope", "alibi", "learned"])
def test_cached_greedy_generation_equals_uncached(position):
    model = tiny(position=position, n_kv_head=2)
    prompt = ids(3, 6)
    cached = model.generate(prompt, max_new_tokens=10)
    uncached = model.generate(prompt, max_new_tokens=10, use_cache=False)
    assert cached.shape == (3, 16) and torch.equal(cached[:, :6], prompt)
    assert torch.equal(cached, uncached)
    assert model.training  # generate restores the mode


def test_generation_matches_transformers_and_stops_at_eos(seeded_generator):
    model = tiny()
    prompt = ids(2, 5)
    hf_out = gpt_to_llama(model).generate(prompt, max_new_tokens=8, do_sample=False,
                                          attention_mask=torch.ones_like(prompt), pad_token_id=0)
    ours = model.generate(prompt, max_new_tokens=8)
    assert torch.equal(ours, hf_out)
    eos = int(ours[0, 7])  # the third generated token of row 0
    stopped = model.generate(prompt, max_new_tokens=8, eos_id=eos)
    row0 = stopped[0, 5:].tolist()
    assert row0[:row0.index(eos) + 1] == ours[0, 5:5 + row0.index(eos) + 1].tolist()
    assert all(t == eos for t in row0[row0.index(eos):])
    sampled = model.generate(prompt, 4, temperature=1.0, top_k=5, generator=seeded_generator)
    assert sampled.shape == (2, 9)


def test_attention_backends_agree_inside_the_model():
    x, doc_ids = ids(), torch.tensor([[0] * 4 + [1] * 8, [0] * 12])
    outs = []
    for backend in ("reference", "sdpa", "auto"):
        model = tiny(position="alibi", attn_backend=backend).eval()
        with torch.no_grad():
            outs.append(model(x, doc_ids=doc_ids).logits)
    torch.testing.assert_close(outs[1], outs[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(outs[2], outs[0], atol=1e-5, rtol=0)


def test_param_counts_flops_and_optimizer_groups():
    model = tiny(n_kv_head=2)
    cfg = model.cfg
    total = sum(p.numel() for p in model.parameters())
    assert model.num_params() == total
    embeddings = 2 * cfg.padded_vocab_size * cfg.d_model
    assert model.num_params(exclude_embeddings=True) == total - embeddings
    per_layer = cfg.d_model * (cfg.n_head + 2 * 2) * cfg.head_dim + cfg.d_model ** 2 + 3 * cfg.d_model * cfg.d_ff \
        + 2 * cfg.d_model
    assert model.num_params(exclude_embeddings=True) == cfg.n_layer * per_layer + cfg.d_model
    n = model.num_params(exclude_embeddings=True) + cfg.d_model * cfg.vocab_size
    assert model.flops_per_token(16) == 6 * n + 12 * cfg.n_layer * cfg.n_head * cfg.head_dim * 16
    tied = tiny(tie_embeddings=True, position="learned", bias=True, norm="layernorm")
    assert tied.num_params() == sum(p.numel() for p in tied.parameters())  # shared weight counted once
    decay, no_decay = tied.configure_optimizer_groups(0.1)
    decay_ids = {id(p) for p in decay["params"]}
    assert id(tied.wte.weight) not in decay_ids and id(tied.wpe.weight) not in decay_ids
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() == 1 or p is tied.wte.weight
                                                              or p is tied.wpe.weight for p in no_decay["params"])
    assert len(decay_ids) + len(no_decay["params"]) == len(list(tied.parameters()))
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0


def test_config_validation():
    with pytest.raises(ValueError, match="valid choices"):
        GPTConfig(position="sinusoidal")
    with pytest.raises(ValueError, match="valid choices"):
        GPTConfig(attn_backend="xformers")
    with pytest.raises(ValueError, match="n_kv_head"):
        GPTConfig(n_head=4, n_kv_head=3)
    assert GPTConfig(d_model=256, mlp="swiglu").d_ff == 704 and GPTConfig(d_model=256, mlp="gelu").d_ff == 1024
    with pytest.raises(ValueError, match="max_seq_len"):
        tiny()(ids(1, 40))


def test_bf16_autocast_forward_with_low_precision_norm():
    model = tiny(low_precision_norm=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(ids()).logits
    assert logits.dtype == torch.bfloat16 and torch.isfinite(logits.float()).all()


@pytest.mark.parametrize("tie", [False, True])
def test_fused_targets_loss_equals_cross_entropy_of_logits(tie):
    x = ids(2, 13)
    targets = ids(2, 13, seed=4)
    targets[0, :3] = -100
    grads = []
    for fused in (True, False):
        model = tiny(vocab_size=100, tie_embeddings=tie, position="learned")
        if fused:
            out = model(x, targets=targets)
            assert out.logits is None
            loss = out.loss
        else:
            loss = torch.nn.functional.cross_entropy(model(x).logits.flatten(0, 1), targets.flatten())
        loss.backward()
        grads.append((loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}))
    torch.testing.assert_close(grads[0][0], grads[1][0], atol=1e-5, rtol=1e-5)
    for name, g in grads[0][1].items():
        torch.testing.assert_close(g, grads[1][1][name], atol=1e-6, rtol=1e-4, msg=name)
    with pytest.raises(ValueError, match="targets"):
        tiny()(x, targets=targets[:, :5])
