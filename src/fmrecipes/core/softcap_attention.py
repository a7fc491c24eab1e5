"""Causal attention with soft-capped logits, softmax(c·tanh(q·kᵀ/(c·√d)) + causal mask)·v (Gemma 2; the
'softmax capping' of arXiv 2410.16682), without SDPA's fused kernels, which cannot cap.

* On CUDA: ``flex_attention`` with the cap as its ``score_mod`` and a causal block mask (compiled by Inductor
  into one fused kernel, forward and backward).
* Elsewhere (CPU: flex_attention has no backward there): :class:`CappedCausalAttention`, a hand-written
  autograd function over blocks of queries. Block i of queries only meets the keys up to its end, so the fully
  masked upper blocks of q·kᵀ are never computed, and the backward is written out (softmax backward, then
  the cap's derivative 1 - tanh²) instead of autograd's chain of element-wise steps. It saves the
  probabilities and the tanh of each block, as the explicit path saves its logits and probabilities.

Both compute the scale, cap, mask order of the explicit path in :mod:`fmrecipes.core.gpt` (tested against it
and against Hugging Face Gemma-2).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .compile import maybe_compile

QUERY_BLOCK = 64


def softcap(z: torch.Tensor, cap: float) -> torch.Tensor:
    """Soft-capping c·tanh(z/c) (Gemma 2; arXiv 2410.16682 'softmax capping')."""
    return cap * torch.tanh(z / cap)


class CappedCausalAttention(torch.autograd.Function):
    """(B, H, T, D) queries, keys, values -> (B, H, T, D) outputs; ``cap`` > 0. Logits, tanh and softmax in fp32
    or wider (as the explicit path's ``softmax(z.float())``), matrix products in the inputs' dtype."""

    @staticmethod
    def forward(ctx, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cap: float) -> torch.Tensor:
        T, acc = q.shape[-2], torch.promote_types(q.dtype, torch.float32)
        v = v.contiguous()  # a transposed view in the model: one copy here, not one per block
        ratio = q.shape[-1] ** -0.5 / cap
        outs, saved = [], []
        for a in range(0, T, QUERY_BLOCK):
            b = min(T, a + QUERY_BLOCK)
            t = torch.matmul(q[..., a:b, :], k[..., :b, :].transpose(-2, -1)).to(acc).mul_(ratio).tanh_()
            z = (t * cap).masked_fill_(torch.ones(b - a, b, dtype=torch.bool, device=q.device).triu_(a + 1),
                                       float("-inf"))
            p = torch.softmax(z, dim=-1)
            outs.append(torch.matmul(p.to(v.dtype), v[..., :b, :]))  # bf16 under autocast, as the explicit path
            saved += [p, t]
        ctx.save_for_backward(q, k, v, *saved)
        return torch.cat(outs, dim=-2)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        q, k, v, *saved = ctx.saved_tensors
        T, scale = q.shape[-2], q.shape[-1] ** -0.5
        grad = grad.contiguous()
        dq, dk, dv = torch.empty_like(q), torch.zeros_like(k), torch.zeros_like(v)
        for i, a in enumerate(range(0, T, QUERY_BLOCK)):
            b = min(T, a + QUERY_BLOCK)
            p, t = saved[2 * i], saved[2 * i + 1]
            g = grad[..., a:b, :].to(v.dtype)
            dv[..., :b, :] += torch.matmul(p.to(v.dtype).transpose(-2, -1), g)
            dp = torch.matmul(g, v[..., :b, :].transpose(-2, -1)).to(p.dtype)
            dz = torch._softmax_backward_data(dp, p, -1, p.dtype)
            ds = dz.addcmul_(dz, t * t, value=-1.0).to(k.dtype)  # d(c·tanh(s/c))/ds = 1 - tanh²
            dq[..., a:b, :] = torch.matmul(ds, k[..., :b, :]).mul_(scale)  # the 1/√d of s = q·kᵀ/√d
            dk[..., :b, :] += torch.matmul(ds.transpose(-2, -1), q[..., a:b, :].to(k.dtype)).mul_(scale)
        return dq, dk, dv, None


def _flex_capped(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cap: float) -> torch.Tensor:
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    def score_mod(score, b, h, q_idx, kv_idx):
        return softcap(score, cap)

    def causal(b, h, q_idx, kv_idx):
        return q_idx >= kv_idx

    T = q.shape[-2]
    mask = create_block_mask(causal, None, None, T, k.shape[-2], device=q.device)
    return flex_attention(q, k, v, score_mod=score_mod, block_mask=mask)


_flex: dict[str, Callable[..., torch.Tensor]] = {}  # one compiled flex_attention per device type


def capped_causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cap: float,
                            use_flex: bool | None = None) -> torch.Tensor:
    """Soft-capped causal attention: ``flex_attention`` (compiled; eager after a warning where compiling fails)
    on CUDA, :class:`CappedCausalAttention` elsewhere; ``use_flex`` forces the choice (flex is forward-only on
    a CPU)."""
    if use_flex if use_flex is not None else q.device.type == "cuda":
        kind = q.device.type
        if kind not in _flex:
            _flex[kind] = maybe_compile(_flex_capped, True, q.device, "soft-capped flex_attention", dynamic=False)
        return _flex[kind](q, k, v, cap)
    return CappedCausalAttention.apply(q, k, v, cap)
