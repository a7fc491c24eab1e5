"""The softmax contrastive (CLIP / InfoNCE) loss with a learned temperature, DDP-aware.

    L_CLIP = -1/(2B) Σ_k [ log softmax_j(s(I_k, T_j)/τ)_k + log softmax_j(s(T_k, I_j)/τ)_k ]

(TIPS notes A.3; CLIP). Under DDP every rank all-gathers the features of the whole global batch with
gradients (``torch.distributed.nn.all_gather``) and computes the full loss, so after DDP averages the
gradients they equal one process's on the whole batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class LogitScale(nn.Module):
    """1/τ, learned in log space (CLIP init τ = 0.07), clamped at ``max_scale`` (CLIP: 100)."""

    def __init__(self, init_temperature: float = 0.07, max_scale: float = 100.0):
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / init_temperature)))
        self.max_scale = max_scale

    def forward(self) -> torch.Tensor:
        return self.log_scale.exp().clamp(max=self.max_scale)


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """``x`` from every rank, concatenated in rank order, differentiable; ``x`` itself without DDP."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x), dim=0)


def clip_loss(image: torch.Tensor, text: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric InfoNCE of paired ``image`` and ``text`` embeddings [B, D] (L2-normalised here) over the
    global batch; returns (loss, image-to-text top-1 accuracy)."""
    image = gather_with_grad(F.normalize(image.float(), dim=-1))
    text = gather_with_grad(F.normalize(text.float(), dim=-1))
    logits = scale * image @ text.T
    labels = torch.arange(len(logits), device=logits.device)
    loss = 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
    return loss, (logits.argmax(1) == labels).float().mean().detach()
