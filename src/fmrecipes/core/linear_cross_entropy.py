"""The LM head and next-token cross-entropy in one pass over slices of positions, never holding the whole
(B·T, V) logits, their log-softmax or its gradient (the fused linear cross-entropy of Liger-Kernel / Apple's
Cut Cross-Entropy, here in plain PyTorch).

For rows of hidden states h (N, d), head weight W (V, d), targets t and z = h·Wᵀ (soft-capped z = c·tanh(z/c)
when ``cap`` is set), NLL = logsumexp(z) - z[t]. With gradients enabled, each slice's gradient is formed at
once, dz = softmax(z) - onehot(t) (times 1 - tanh² under a cap), dh = dz·W and dW += dzᵀ·h, and handed to
autograd, so the slice's logits are freed before the next one. Matrix products run in the autocast dtype
when autocast is on (bf16 on GPU), the softmax and the gradient of z in fp32.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .softcap_attention import softcap

ROWS = 1024  # positions per slice: a (1024, V) fp32 block of logits
IGNORE_INDEX = -100  # targets that count for nothing (F.cross_entropy's default)


def token_nll(hidden: torch.Tensor, head: Callable[[torch.Tensor], torch.Tensor], targets: torch.Tensor,
              rows: int = ROWS) -> torch.Tensor:
    """Per-position NLL (same shape as ``targets``) of hidden states (..., d) under ``head``, ``rows`` positions
    at a time, in fp32 (no gradient formed ahead; for scoring and evaluation)."""
    h, t = hidden.reshape(-1, hidden.shape[-1]), targets.reshape(-1, 1)
    parts = []
    for s in range(0, h.shape[0], rows):
        z = head(h[s:s + rows]).float()
        parts.append(torch.logsumexp(z, dim=-1) - z.gather(1, t[s:s + rows])[:, 0])
    return torch.cat(parts).view(targets.shape)


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    kind = x.device.type
    return torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else x.dtype


class LinearCrossEntropy(torch.autograd.Function):
    """Mean NLL over the rows whose target is not :data:`IGNORE_INDEX`; the gradients of ``h`` and ``W`` are
    formed in the forward, slice by slice."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, cap: float | None,
                rows: int) -> torch.Tensor:
        dt = _compute_dtype(h)
        acc = torch.promote_types(dt, torch.float32)  # softmax and dz in fp32 (fp64 for fp64 inputs)
        valid = targets != IGNORE_INDEX
        count = valid.sum()  # the mean is over the positions not ignored (0 of them: NaN, as F.cross_entropy)
        w = weight.to(dt)
        grad_h = torch.empty_like(h)
        grad_w = torch.zeros(weight.shape, dtype=torch.promote_types(weight.dtype, acc), device=weight.device)
        total = torch.zeros((), dtype=acc, device=h.device)
        for s in range(0, h.shape[0], rows):
            hs, ts, keep = h[s:s + rows].to(dt), targets[s:s + rows].clamp_min(0), valid[s:s + rows]
            z = torch.matmul(hs, w.t()).to(acc)
            if cap is not None:
                tanh = z.div_(cap).tanh_()
                z = tanh * cap
            lse = torch.logsumexp(z, dim=-1)
            total += ((lse - z.gather(1, ts[:, None])[:, 0]) * keep).sum()
            dz = z.sub_(lse[:, None]).exp_()  # softmax, in place of z
            dz[torch.arange(len(ts), device=h.device), ts] -= 1.0
            if cap is not None:
                dz.addcmul_(dz, tanh * tanh, value=-1.0)  # d(c·tanh(z/c))/dz = 1 - tanh²
            dz = dz.mul_((keep / count)[:, None]).to(dt)
            grad_h[s:s + rows] = torch.matmul(dz, w)
            grad_w.add_(torch.matmul(dz.t(), hs))
        ctx.save_for_backward(grad_h, grad_w.to(weight.dtype))
        return total / count

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad_h, grad_w = ctx.saved_tensors
        return grad_h * grad, grad_w * grad, None, None, None


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                         cap: float | None = None, rows: int = ROWS) -> torch.Tensor:
    """Mean next-token cross-entropy of ``hidden`` (..., d) under the head ``weight`` (V, d) (and final logit
    soft-cap ``cap``): ``F.cross_entropy(head(hidden), targets)`` (targets -100 ignored) without the full logits.
    Without gradients (evaluation) only the loss is computed."""
    h, t = hidden.reshape(-1, hidden.shape[-1]), targets.reshape(-1)
    if torch.is_grad_enabled() and (h.requires_grad or weight.requires_grad):
        return LinearCrossEntropy.apply(h, weight, t, cap, rows)

    def head(x: torch.Tensor) -> torch.Tensor:
        z = torch.matmul(x, weight.t())
        return z if cap is None else softcap(z, cap)

    valid = t != IGNORE_INDEX
    return token_nll(h, head, t.clamp_min(0), rows)[valid].mean()
