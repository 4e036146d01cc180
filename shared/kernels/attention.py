"""The one attention entry point of the repo: every model calls ``attention`` or ``varlen_attention``.

Layouts
- padded: q (batch, heads, q_len, head_dim); k, v (batch, kv_heads, k_len, head_dim) with
  heads % kv_heads == 0 (grouped-query attention when kv_heads < heads). Output like q.
  This is the layout ``F.scaled_dot_product_attention`` takes; flash-attn gets transposed views.
- varlen (unpadded): q (total_tokens, heads, head_dim); k, v (total_tokens, kv_heads, head_dim);
  ``cu_seqlens`` (num_seqs + 1,) int32 cumulative lengths, flash-attn's convention
  (``shared.kernels.padding.unpad_input`` builds them from a padding mask).

Options (same meaning in every backend; the reference backend is their definition)
- causal: key j visible to query i iff j <= i + (k_len - q_len): queries are the *last* q_len
  positions (decoding with a KV cache). causal=False is bidirectional (encoders).
- alibi_slopes (heads,): adds -slope[h] * |pos_q - pos_k| (``shared.kernels.alibi``).
- doc_ids (batch, seq) int: packed sequences; a token attends only to tokens of its own document
  (same id in the same row). Documents must be contiguous runs in a row (the flash path cuts
  segments where the id changes). Needs q_len == k_len.
- key_padding_mask (batch, seq) bool, True = real token: padding keys are never attended to and
  the outputs at padding positions are exactly zero. Needs q_len == k_len.
- dropout_p: attention-probability dropout (pass 0.0 in eval); scale: default head_dim ** -0.5.

Backends, and what ``backend="auto"`` picks (first that applies):
1. "flash"  flash-attn 2, if installed, on CUDA, fp16/bf16 inputs, head_dim <= 256.
2. "sdpa"   when there is no ALiBi, no documents and no padding: the is_causal fast path, no mask
            tensor at all (PyTorch's fused kernels, also the fastest on CPU).
3. "flex"   FlexAttention on non-CPU devices (block-sparse masks skip other documents' blocks,
            ALiBi as a score_mod, no O(seq^2) mask in memory).
4. "sdpa"   with an explicit mask on CPU. Measured on this 2-core CPU, 1 thread, torch 2.13
            (benchmarks/attention_backends.py, B 4, H 8, S 256, D 32, 4 packed docs + ALiBi):
            forward 6.0 ms SDPA+mask vs 32 ms eager FlexAttention (3.2 ms compiled, after an 8 s
            compile per shape); FlexAttention has no CPU backward at all (see attention_flex.py).
"reference" is the float32 definition (slow, materialises everything). Asking explicitly for a
backend that cannot run the call raises ``BackendUnavailable`` (a RuntimeError) with the reason; ``explain_backend``
returns the choice and every reason without running anything.
"""
from __future__ import annotations

import torch

from shared.kernels.attention_flash import flash_attention, flash_unavailable_reason, flash_varlen_attention
from shared.kernels.attention_flex import flex_attention_padded, flex_unavailable_reason, flex_varlen_attention
from shared.kernels.attention_reference import reference_attention, reference_varlen_attention
from shared.kernels.attention_sdpa import sdpa_attention, sdpa_varlen_attention

BACKENDS = ("auto", "flash", "flex", "sdpa", "reference")


class BackendUnavailable(RuntimeError):
    """A named backend cannot run this call (missing package, device, dtype, or an unsupported
    feature such as FlexAttention's backward on CPU); the message gives the reason."""

_PADDED = {"flash": flash_attention, "flex": flex_attention_padded, "sdpa": sdpa_attention,
           "reference": reference_attention}
_VARLEN = {"flash": flash_varlen_attention, "flex": flex_varlen_attention, "sdpa": sdpa_varlen_attention,
           "reference": reference_varlen_attention}


def _unavailable(name: str, q, k, v, dropout_p: float) -> str | None:
    if name == "flash":
        return flash_unavailable_reason(q, k, v, dropout_p)
    if name == "flex":
        return flex_unavailable_reason(q, k, v, dropout_p)
    return None


def explain_backend(backend: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *,
                    needs_mask: bool, dropout_p: float = 0.0) -> tuple[str, dict[str, str]]:
    """(chosen backend, {skipped backend: why}). needs_mask: ALiBi, documents or padding are on."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown attention backend {backend!r}; valid choices: {', '.join(BACKENDS)}")
    if backend != "auto":
        reason = _unavailable(backend, q, k, v, dropout_p)
        if reason is not None:
            raise BackendUnavailable(f"attention backend {backend!r} cannot run this call: {reason}")
        return backend, {}
    skipped: dict[str, str] = {}
    reason = _unavailable("flash", q, k, v, dropout_p)
    if reason is None:
        return "flash", skipped
    skipped["flash"] = reason
    if not needs_mask:
        return "sdpa", skipped
    if q.device.type == "cpu":
        skipped["flex"] = "on CPU, SDPA with an explicit mask is faster (and FlexAttention has no CPU backward)"
        return "sdpa", skipped
    reason = _unavailable("flex", q, k, v, dropout_p)
    if reason is None:
        return "flex", skipped
    skipped["flex"] = reason
    return "sdpa", skipped


def _check_padded(q, k, v, alibi_slopes, doc_ids, key_padding_mask, causal) -> None:
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(f"q, k, v must be (batch, heads, seq, head_dim); got {tuple(q.shape)}, "
                         f"{tuple(k.shape)}, {tuple(v.shape)}")
    if k.shape != v.shape or q.shape[0] != k.shape[0] or q.shape[3] != k.shape[3]:
        raise ValueError(f"k, v must be (batch, kv_heads, k_len, head_dim) matching q {tuple(q.shape)}; "
                         f"got k {tuple(k.shape)}, v {tuple(v.shape)}")
    _check_heads(q.shape[1], k.shape[1], alibi_slopes)
    batch, q_len, k_len = q.shape[0], q.shape[2], k.shape[2]
    if causal and q_len > k_len:
        raise ValueError(f"causal attention needs q_len <= k_len, got {q_len} > {k_len}")
    for name, t in (("doc_ids", doc_ids), ("key_padding_mask", key_padding_mask)):
        if t is not None and (tuple(t.shape) != (batch, k_len) or q_len != k_len):
            raise ValueError(f"{name} must be (batch, seq) = ({batch}, {k_len}) with q_len == k_len; "
                             f"got {tuple(t.shape)} and q_len {q_len}")


def _check_heads(heads: int, kv_heads: int, alibi_slopes) -> None:
    if heads % kv_heads:
        raise ValueError(f"query heads ({heads}) must be a multiple of key/value heads ({kv_heads})")
    if alibi_slopes is not None and tuple(alibi_slopes.shape) != (heads,):
        raise ValueError(f"alibi_slopes must have shape ({heads},), got {tuple(alibi_slopes.shape)}")


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool,
              alibi_slopes: torch.Tensor | None = None, doc_ids: torch.Tensor | None = None,
              key_padding_mask: torch.Tensor | None = None, dropout_p: float = 0.0,
              scale: float | None = None, backend: str = "auto") -> torch.Tensor:
    """Padded-layout attention. q (B, H, Sq, D); k, v (B, Hkv, Sk, D) -> (B, H, Sq, D). See module doc."""
    _check_padded(q, k, v, alibi_slopes, doc_ids, key_padding_mask, causal)
    needs_mask = alibi_slopes is not None or doc_ids is not None or key_padding_mask is not None
    name, _ = explain_backend(backend, q, k, v, needs_mask=needs_mask, dropout_p=dropout_p)
    return _PADDED[name](q, k, v, causal=causal, alibi_slopes=alibi_slopes, doc_ids=doc_ids,
                         key_padding_mask=key_padding_mask, dropout_p=dropout_p, scale=scale)


def varlen_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu_seqlens: torch.Tensor,
                     max_seqlen: int | None = None, *, causal: bool, alibi_slopes: torch.Tensor | None = None,
                     dropout_p: float = 0.0, scale: float | None = None, backend: str = "auto") -> torch.Tensor:
    """Unpadded attention. q (T, H, D); k, v (T, Hkv, D); cu_seqlens (n+1,) -> (T, H, D).

    Each of the n sequences attends only within itself. ``auto`` picks flash-attn, else SDPA
    (pad to (n, max_seqlen), attend with a key mask, unpad). max_seqlen: the longest sequence (computed
    from cu_seqlens when None; pass it to avoid a device sync).
    """
    if q.dim() != 3 or k.shape != v.shape or k.dim() != 3 or q.shape[0] != k.shape[0] or q.shape[2] != k.shape[2]:
        raise ValueError(f"varlen q, k, v must be (total, heads, head_dim) with equal total and head_dim; got "
                         f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    _check_heads(q.shape[1], k.shape[1], alibi_slopes)
    if cu_seqlens.dim() != 1 or cu_seqlens.numel() < 2 or cu_seqlens.is_floating_point():
        raise ValueError("cu_seqlens must be a 1-d integer tensor [0, ..., total], "
                         f"got shape {tuple(cu_seqlens.shape)}")
    if max_seqlen is None:
        max_seqlen = int((cu_seqlens[1:] - cu_seqlens[:-1]).max().item())
    # auto: flash-attn, else SDPA on the re-padded batch. Not flex: its varlen form is one row of
    # total_tokens, a new shape at every batch, and compiled FlexAttention recompiles per shape.
    name, _ = explain_backend(backend, q, k, v, needs_mask=True, dropout_p=dropout_p)
    if backend == "auto" and name == "flex":
        name = "sdpa"
    return _VARLEN[name](q, k, v, cu_seqlens, max_seqlen, causal=causal, alibi_slopes=alibi_slopes,
                         dropout_p=dropout_p, scale=scale)


def available_backends(q: torch.Tensor, k: torch.Tensor | None = None, v: torch.Tensor | None = None,
                       dropout_p: float = 0.0) -> list[str]:
    """Backends (not "auto") that can run a call with these tensors."""
    k = q if k is None else k
    v = k if v is None else v
    return [b for b in BACKENDS[1:] if _unavailable(b, q, k, v, dropout_p) is None]
