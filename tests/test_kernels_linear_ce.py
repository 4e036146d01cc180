"""The fused chunked LM-head + cross-entropy agrees with F.cross_entropy on materialised logits."""
import pytest
import torch

from shared.kernels.linear_cross_entropy import linear_cross_entropy, linear_cross_entropy_reference

pytestmark = pytest.mark.usefixtures("one_torch_thread")   # tests/conftest.py


def _inputs(n=37, d=16, v_padded=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n, d, generator=g, requires_grad=True)
    w = (torch.randn(v_padded, d, generator=g) * 0.5).requires_grad_(True)
    t = torch.randint(0, 50, (n,), generator=g)
    t[[3, 10, 11]] = -100  # ignored positions
    return h, w, t


@pytest.mark.parametrize("chunk", [1, 8, 37, 1000])
@pytest.mark.parametrize("vocab_size", [50, 64])  # 50: rows 50..63 of the weight are vocab padding
def test_loss_and_grads_match_reference(chunk, vocab_size):
    h, w, t = _inputs()
    loss = linear_cross_entropy(h, w, t, vocab_size=vocab_size, chunk_tokens=chunk)
    (loss * 1.7).backward()
    grads = h.grad.clone(), w.grad.clone()
    h.grad = w.grad = None
    ref = linear_cross_entropy_reference(h, w, t, vocab_size=vocab_size)
    (ref * 1.7).backward()
    torch.testing.assert_close(loss, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grads[0], h.grad, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(grads[1], w.grad, atol=1e-6, rtol=1e-5)
    if vocab_size < w.shape[0]:
        assert grads[1][vocab_size:].abs().max() == 0  # padding rows never take part


def test_no_grad_path_and_only_weight_grad():
    h, w, t = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(linear_cross_entropy(h, w, t), linear_cross_entropy_reference(h, w, t))
    h_frozen = h.detach()
    linear_cross_entropy(h_frozen, w, t).backward()
    w_grad = w.grad.clone()
    w.grad = None
    linear_cross_entropy_reference(h_frozen, w, t).backward()
    torch.testing.assert_close(w_grad, w.grad, atol=1e-6, rtol=1e-5)


def test_bf16_autocast_is_close_to_float32():
    h, w, t = _inputs(n=64, d=32)
    ref = linear_cross_entropy_reference(h, w, t)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = linear_cross_entropy(h, w, t, chunk_tokens=16)
    loss.backward()
    assert loss.dtype == torch.float32 and w.grad.dtype == torch.float32 and h.grad.dtype == torch.float32
    assert abs(loss.item() - ref.item()) < 0.05


def test_bad_shapes_raise():
    h, w, t = _inputs()
    with pytest.raises(ValueError, match="targets"):
        linear_cross_entropy(h, w, t[:-1])
