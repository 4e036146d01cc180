"""Attention dispatch, ALiBi, norms and unpad/pad: every backend that can run here agrees with the
float32 reference (flash-attn's adapter is checked through a stand-in for the flash kernels)."""
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from shared.kernels import attention_flash
from shared.kernels.alibi import alibi_bias, alibi_slopes
from shared.kernels.attention import attention, available_backends, explain_backend, varlen_attention
from shared.kernels.attention_reference import reference_attention, reference_varlen_attention
from shared.kernels.norms import LayerNorm, RMSNorm, build_norm
from shared.kernels.padding import pad_input, segments_to_varlen, unpad_input

pytestmark = pytest.mark.usefixtures("one_torch_thread")   # tests/conftest.py


B, H, S, D = 2, 4, 24, 8
ATOL = 1e-5


def qkv(batch=B, heads=H, kv_heads=H, seq=S, dim=D, seed=0, grad=False):
    g = torch.Generator().manual_seed(seed)
    shapes = [(batch, heads, seq, dim), (batch, kv_heads, seq, dim), (batch, kv_heads, seq, dim)]
    return [torch.randn(s, generator=g).requires_grad_(grad) for s in shapes]


DOC_IDS = torch.tensor([[0] * 7 + [1] * 10 + [2] * 7, [5] * 24])
PAD_MASK = torch.ones(B, S, dtype=torch.bool)
PAD_MASK[1, 17:] = False  # row 1 right-padded
# backends that run a no-grad forward here: sdpa, flex (forward only on CPU), reference
FWD_BACKENDS = [b for b in available_backends(torch.zeros(1, 1, 4, 8)) if b != "reference"]


def test_slopes_match_alibi_paper():
    # powers of two: geometric sequence starting at 2^(-8/n), e.g. n=8 -> 1/2, 1/4, ..., 1/256
    assert torch.allclose(alibi_slopes(8), torch.tensor([2.0 ** -(i + 1) for i in range(8)]))
    assert torch.allclose(alibi_slopes(4), torch.tensor([2.0 ** (-2 * (i + 1)) for i in range(4)]))
    # non power of two (n=6): 4-head slopes, then every other 8-head slope
    expected = [2.0 ** -2, 2.0 ** -4, 2.0 ** -6, 2.0 ** -8, 2.0 ** -1, 2.0 ** -3]
    assert torch.allclose(alibi_slopes(6), torch.tensor(expected))
    assert alibi_slopes(12).shape == (12,) and len(set(alibi_slopes(12).tolist())) == 12
    with pytest.raises(ValueError):
        alibi_slopes(0)


def test_alibi_bias_is_minus_slope_times_distance():
    slopes = alibi_slopes(2)
    bias = alibi_bias(slopes, 3, 5)  # queries are the last 3 of 5 positions
    assert bias.shape == (2, 3, 5)
    assert bias[0, 0, 2] == 0 and math.isclose(bias[1, 0, 0].item(), -2 * slopes[1].item())
    assert math.isclose(bias[0, 2, 1].item(), -3 * slopes[0].item())


@pytest.mark.parametrize("backend", FWD_BACKENDS)
@pytest.mark.parametrize("causal,use_alibi,use_docs,use_pad", list(itertools.product([True, False], repeat=4)))
def test_backend_matches_reference(backend, causal, use_alibi, use_docs, use_pad):
    q, k, v = qkv()
    kwargs = dict(causal=causal, alibi_slopes=alibi_slopes(H) if use_alibi else None,
                  doc_ids=DOC_IDS if use_docs else None, key_padding_mask=PAD_MASK if use_pad else None)
    ref = reference_attention(q, k, v, **kwargs)
    with torch.no_grad():
        out = attention(q, k, v, backend=backend, **kwargs)
    torch.testing.assert_close(out, ref, atol=ATOL, rtol=0)


@pytest.mark.parametrize("backend", FWD_BACKENDS)
@pytest.mark.parametrize("use_alibi", [False, True])
def test_grouped_query_attention_matches_reference(backend, use_alibi):
    q, k, v = qkv(kv_heads=2)
    kwargs = dict(causal=True, alibi_slopes=alibi_slopes(H) if use_alibi else None, doc_ids=DOC_IDS)
    with torch.no_grad():
        torch.testing.assert_close(attention(q, k, v, backend=backend, **kwargs),
                                   reference_attention(q, k, v, **kwargs), atol=ATOL, rtol=0)


@pytest.mark.parametrize("use_alibi,use_docs", [(False, False), (True, False), (False, True), (True, True)])
def test_auto_backward_matches_reference(use_alibi, use_docs):
    kwargs = dict(causal=True, alibi_slopes=alibi_slopes(H) if use_alibi else None,
                  doc_ids=DOC_IDS if use_docs else None, key_padding_mask=PAD_MASK)
    grads = []
    for backend in ("auto", "reference"):
        q, k, v = qkv(grad=True)
        out = attention(q, k, v, backend=backend, **kwargs)
        (out * torch.linspace(-1, 1, D)).sum().backward()
        grads.append([t.grad for t in (q, k, v)])
    for g_auto, g_ref in zip(*grads):
        torch.testing.assert_close(g_auto, g_ref, atol=ATOL, rtol=0)


@pytest.mark.parametrize("backend", FWD_BACKENDS)
def test_kv_cache_queries_are_the_last_positions(backend):
    q, k, v = qkv()
    slopes = alibi_slopes(H)
    full = reference_attention(q, k, v, causal=True, alibi_slopes=slopes)
    with torch.no_grad():
        for n_new in (1, 5):
            tail = attention(q[:, :, -n_new:], k, v, causal=True, alibi_slopes=slopes, backend=backend)
            torch.testing.assert_close(tail, full[:, :, -n_new:], atol=ATOL, rtol=0)


@pytest.mark.parametrize("backend", FWD_BACKENDS + ["reference"])
def test_documents_are_isolated(backend):
    q, k, v = qkv()
    doc1, doc2 = DOC_IDS[0] == 0, DOC_IDS[0] == 1
    with torch.no_grad():
        before = attention(q, k, v, causal=False, doc_ids=DOC_IDS, alibi_slopes=alibi_slopes(H), backend=backend)
        k2, v2 = k.clone(), v.clone()
        k2[0, :, doc2] += 3.0
        v2[0, :, doc2] -= 2.0
        after = attention(q, k2, v2, causal=False, doc_ids=DOC_IDS, alibi_slopes=alibi_slopes(H), backend=backend)
    torch.testing.assert_close(after[0, :, doc1], before[0, :, doc1], atol=ATOL, rtol=0)
    assert (after[0, :, doc2] - before[0, :, doc2]).abs().max() > 0.1  # doc 2 itself did change


@pytest.mark.parametrize("backend", FWD_BACKENDS + ["reference"])
def test_padding_is_ignored_and_zeroed(backend):
    q, k, v = qkv()
    with torch.no_grad():
        out = attention(q, k, v, causal=False, key_padding_mask=PAD_MASK, backend=backend)
        k[1, :, 17:] = 100.0
        v[1, :, 17:] = -100.0
        out2 = attention(q, k, v, causal=False, key_padding_mask=PAD_MASK, backend=backend)
    assert out[1, :, 17:].abs().max() == 0
    torch.testing.assert_close(out2, out, atol=ATOL, rtol=0)


@pytest.mark.parametrize("backend", FWD_BACKENDS + ["reference"])
@pytest.mark.parametrize("causal,use_alibi", [(True, False), (False, True), (True, True)])
def test_varlen_equals_padded(backend, causal, use_alibi):
    q, k, v = qkv(kv_heads=2)
    slopes = alibi_slopes(H) if use_alibi else None
    padded = reference_attention(q, k, v, causal=causal, alibi_slopes=slopes, key_padding_mask=PAD_MASK)
    unpadded = []
    for t in (q, k, v):
        x, indices, cu_seqlens, max_seqlen = unpad_input(t.transpose(1, 2), PAD_MASK)
        unpadded.append(x)
    with torch.no_grad():
        out = varlen_attention(*unpadded, cu_seqlens, max_seqlen, causal=causal, alibi_slopes=slopes,
                               backend=backend)
    assert out.shape == (int(PAD_MASK.sum()), H, D)
    torch.testing.assert_close(pad_input(out, indices, B, S).transpose(1, 2), padded, atol=ATOL, rtol=0)


def test_unpad_pad_round_trip_and_segments():
    x = torch.randn(B, S, 3)
    x_unpad, indices, cu_seqlens, max_seqlen = unpad_input(x, PAD_MASK)
    assert cu_seqlens.tolist() == [0, 24, 41] and max_seqlen == 24
    back = pad_input(x_unpad, indices, B, S)
    torch.testing.assert_close(back[PAD_MASK], x[PAD_MASK])
    assert back[~PAD_MASK].abs().max() == 0
    indices, cu, max_len = segments_to_varlen(PAD_MASK, DOC_IDS, B, S, torch.device("cpu"))
    assert cu.tolist() == [0, 7, 17, 24, 41] and max_len == 17 and indices.numel() == 41


def _fake_flash(monkeypatch):
    """Stand-ins with flash-attn's signatures and (batch, seq, heads, dim) layout, computed by the reference."""
    def flash_attn_func(q, k, v, dropout_p=0.0, softmax_scale=None, causal=False, alibi_slopes=None):
        out = reference_attention(*(t.transpose(1, 2) for t in (q, k, v)), causal=causal,
                                  alibi_slopes=alibi_slopes, scale=softmax_scale)
        return out.transpose(1, 2)

    def flash_attn_varlen_func(q, k, v, cu_q, cu_k, max_q, max_k, dropout_p=0.0, softmax_scale=None,
                               causal=False, alibi_slopes=None):
        assert torch.equal(cu_q, cu_k) and cu_q.dtype == torch.int32 and max_q == max_k
        return reference_varlen_attention(q, k, v, cu_q, max_q, causal=causal, alibi_slopes=alibi_slopes,
                                          scale=softmax_scale)
    monkeypatch.setattr(attention_flash, "flash_attn_func", flash_attn_func)
    monkeypatch.setattr(attention_flash, "flash_attn_varlen_func", flash_attn_varlen_func)


@pytest.mark.parametrize("causal,use_alibi,use_docs,use_pad", list(itertools.product([True, False], repeat=4)))
def test_flash_adapter_layout_and_segments(monkeypatch, causal, use_alibi, use_docs, use_pad):
    _fake_flash(monkeypatch)
    q, k, v = qkv(kv_heads=2)
    kwargs = dict(causal=causal, alibi_slopes=alibi_slopes(H) if use_alibi else None,
                  doc_ids=DOC_IDS if use_docs else None, key_padding_mask=PAD_MASK if use_pad else None)
    torch.testing.assert_close(attention_flash.flash_attention(q, k, v, **kwargs),
                               reference_attention(q, k, v, **kwargs), atol=ATOL, rtol=0)


def test_backend_choice_and_errors():
    q, k, v = qkv(grad=True)
    name, skipped = explain_backend("auto", q, k, v, needs_mask=False)
    assert name == "sdpa" and "flash" in skipped  # no flash-attn / no CUDA here
    name, skipped = explain_backend("auto", q, k, v, needs_mask=True)
    assert name == "sdpa" and "flex" in skipped
    with pytest.raises(RuntimeError, match="flash"):
        attention(q, k, v, causal=True, backend="flash")
    with pytest.raises(RuntimeError, match="backward on CPU"):
        attention(q, k, v, causal=True, backend="flex")  # inputs require grad
    with pytest.raises(ValueError, match="valid choices"):
        attention(q, k, v, causal=True, backend="xformers")
    with pytest.raises(ValueError, match="alibi_slopes"):
        attention(q, k, v, causal=True, alibi_slopes=alibi_slopes(3))
    with pytest.raises(ValueError, match="multiple"):
        attention(q, k[:, :3], v[:, :3], causal=True)
    with pytest.raises(ValueError, match="doc_ids"):
        attention(q[:, :, :4], k, v, causal=True, doc_ids=DOC_IDS)


def test_norms_match_torch_and_low_precision_stays_low():
    x = torch.randn(3, 5, 16)
    ln, rms = LayerNorm(16), RMSNorm(16, eps=1e-6)
    with torch.no_grad():
        ln.weight.uniform_(0.5, 1.5), ln.bias.uniform_(-1, 1), rms.weight.uniform_(0.5, 1.5)
    torch.testing.assert_close(ln(x), F.layer_norm(x, (16,), ln.weight, ln.bias, 1e-5))
    by_hand = rms.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)
    torch.testing.assert_close(rms(x), by_hand)
    for norm_cls in (LayerNorm, RMSNorm):
        full, low = norm_cls(16), norm_cls(16, low_precision=True)
        low.load_state_dict(full.state_dict())
        torch.testing.assert_close(low(x), full(x))  # float32: identical maths
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y_full, y_low = full(x), low(x)
        assert y_full.dtype == torch.float32 and y_low.dtype == torch.bfloat16
        torch.testing.assert_close(y_low.float(), y_full, atol=0.05, rtol=0.02)
        xb = x.bfloat16()
        assert full(xb).dtype == torch.bfloat16 and low(xb).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="valid choices"):
        build_norm("batchnorm", 16, 1e-5)
