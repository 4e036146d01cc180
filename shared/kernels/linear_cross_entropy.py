"""LM head + cross-entropy fused and chunked: the loss without materialising (tokens, vocab) logits.

``linear_cross_entropy(h, weight, targets)`` == ``F.cross_entropy(h @ weight[:vocab].T, targets)``
(mean over targets != ignore_index), tested against that reference. The token axis is cut into
chunks; for each chunk the logits are computed, turned into the loss and, in the same pass, into
the gradients ``dL/dlogits = (softmax - onehot) / n_valid``, which are immediately contracted into
``dL/dh`` and ``dL/dweight``. Backward only scales those saved gradients. Same matmul FLOPs as the
plain path, but the logits live one cache-sized chunk at a time: no (tokens, vocab) logits,
log-softmax output and gradient tensors written to and read back from memory (the idea of
Liger-Kernel's fused linear cross-entropy and Apple's Cut Cross-Entropy; our own implementation).

Under autocast the matmuls run in the autocast dtype and the softmax in float32; dL/dweight is
accumulated in float32. When no gradient is needed (no_grad / eval) only the loss is computed.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

CPU_CHUNK_TOKENS = 256  # (256, 8192) float32 logits = 8 MB: fits this CPU's L2+L3 (measured best of 128..2048)
GPU_CHUNK_ELEMENTS = 2 ** 26  # on GPU, chunks of up to 64M logits (256 MB float32) keep the matmuls large


def default_chunk_tokens(device: torch.device, vocab_size: int) -> int:
    return CPU_CHUNK_TOKENS if device.type == "cpu" else max(CPU_CHUNK_TOKENS, GPU_CHUNK_ELEMENTS // vocab_size)


def linear_cross_entropy_reference(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                                   vocab_size: int | None = None, ignore_index: int = -100) -> torch.Tensor:
    """h (N, d), weight (V_padded, d), targets (N,) -> mean loss over non-ignored targets."""
    vocab_size = weight.shape[0] if vocab_size is None else vocab_size
    logits = F.linear(h, weight[:vocab_size])
    return F.cross_entropy(logits.float(), targets, ignore_index=ignore_index)


def _chunk_pass(h, weight, targets, vocab_size, ignore_index, chunk, n_valid, want_grad_h, want_grad_w):
    """The loss sum and, if asked, dL/dh and dL/dweight (float32) of the mean loss."""
    w = weight[:vocab_size]
    compute_dtype = torch.get_autocast_dtype(h.device.type) if torch.is_autocast_enabled(h.device.type) else h.dtype
    w_c = w.to(compute_dtype)
    grad_h = torch.empty_like(h) if want_grad_h else None
    grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if want_grad_w else None
    loss_sum = torch.zeros((), dtype=torch.float32, device=h.device)
    for start in range(0, h.shape[0], chunk):
        hc, tc = h[start:start + chunk].to(compute_dtype), targets[start:start + chunk]
        logits = (hc @ w_c.T).float()  # (chunk, vocab)
        valid = tc != ignore_index
        safe_t = torch.where(valid, tc, torch.zeros_like(tc))
        target_logit = logits.gather(1, safe_t[:, None]).squeeze(1)
        row_max = logits.amax(dim=1, keepdim=True)
        exps = logits.sub_(row_max).exp_()  # in place: one exp pass serves the loss and the gradient
        sum_exp = exps.sum(dim=1, keepdim=True)
        lse = (row_max + sum_exp.log()).squeeze(1)
        loss_sum += torch.where(valid, lse - target_logit, torch.zeros_like(lse)).sum()
        if not (want_grad_h or want_grad_w):
            continue
        row_scale = valid.float()[:, None] / n_valid  # ignored rows contribute nothing
        probs = exps.mul_(row_scale / sum_exp)  # softmax / n_valid
        probs.scatter_add_(1, safe_t[:, None], -row_scale)  # - onehot / n_valid
        g = probs.to(compute_dtype)
        if want_grad_h:
            grad_h[start:start + chunk] = (g @ w_c).to(h.dtype)
        if want_grad_w:
            if g.dtype == torch.float32:
                grad_w[:vocab_size].addmm_(g.T, hc)
            else:
                grad_w[:vocab_size] += (g.T @ hc).float()
    return loss_sum, grad_h, grad_w


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, vocab_size: int,
                ignore_index: int, chunk: int) -> torch.Tensor:
        """h (N, d), weight (V_padded, d), targets (N,) -> the mean cross-entropy, a scalar. The
        gradients for h and weight are computed in this pass, chunk by chunk, and saved for backward."""
        n_valid = (targets != ignore_index).sum().clamp(min=1).float()
        loss_sum, grad_h, grad_w = _chunk_pass(h, weight, targets, vocab_size, ignore_index, chunk, n_valid,
                                               ctx.needs_input_grad[0], ctx.needs_input_grad[1])
        ctx.save_for_backward(grad_h, grad_w)
        ctx.weight_dtype = weight.dtype
        return loss_sum / n_valid

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        """grad_out (scalar) -> (grad h (N, d), grad weight (V_padded, d), None x 4)."""
        grad_h, grad_w = ctx.saved_tensors
        dh = None if grad_h is None else grad_h * grad_out.to(grad_h.dtype)
        dw = None if grad_w is None else (grad_w * grad_out).to(ctx.weight_dtype)
        return dh, dw, None, None, None, None


def linear_cross_entropy(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                         vocab_size: int | None = None, ignore_index: int = -100,
                         chunk_tokens: int | None = None) -> torch.Tensor:
    """Mean cross-entropy of logits ``h @ weight[:vocab_size].T`` against targets, fused.

    h (N, d) final hidden states; weight (V_padded, d) the LM head (rows past vocab_size, if any,
    are padding and excluded); targets (N,) long, ignore_index rows skipped. Returns a scalar.
    chunk_tokens: rows per chunk (default: ``default_chunk_tokens``).
    """
    if h.dim() != 2 or targets.shape != h.shape[:1] or weight.dim() != 2 or weight.shape[1] != h.shape[1]:
        raise ValueError(f"need h (N, d), weight (V, d), targets (N,); got {tuple(h.shape)}, "
                         f"{tuple(weight.shape)}, {tuple(targets.shape)}")
    vocab_size = weight.shape[0] if vocab_size is None else vocab_size
    chunk_tokens = chunk_tokens or default_chunk_tokens(h.device, vocab_size)
    if torch.is_grad_enabled() and (h.requires_grad or weight.requires_grad):
        return _LinearCrossEntropy.apply(h, weight, targets, vocab_size, ignore_index, chunk_tokens)
    n_valid = (targets != ignore_index).sum().clamp(min=1).float()
    loss_sum, _, _ = _chunk_pass(h, weight, targets, vocab_size, ignore_index, chunk_tokens, n_valid, False, False)
    return loss_sum / n_valid
