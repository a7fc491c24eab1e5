"""TIPS' self-supervised machinery (notes A.3): the DINO prototype head, teacher centring, patch masks, the EMA
teacher and the schedules (Caron et al. 2021; Zhou et al. 2022; the DINOv2 defaults fill what TIPS does not
state). The DINO and iBOT losses themselves are in :mod:`.losses`.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class PrototypeHead(nn.Module):
    """DINO head: a 3-layer GELU MLP to a bottleneck, L2-normalised, then a weight-normalised linear layer
    onto ``prototypes`` (its gain fixed to 1, as in DINO)."""

    def __init__(self, dim: int, hidden: int, bottleneck: int, prototypes: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, bottleneck))
        self.prototypes = nn.utils.parametrizations.weight_norm(nn.Linear(bottleneck, prototypes, bias=False))
        self.prototypes.parametrizations.weight.original0.data.fill_(1.0)
        self.prototypes.parametrizations.weight.original0.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.prototypes(F.normalize(self.mlp(x), dim=-1))


@torch.no_grad()
def update_center(center: torch.Tensor, teacher_logits: torch.Tensor, momentum: float) -> None:
    """c <- m·c + (1 - m)·mean(teacher logits) over the global batch (all ranks), in place."""
    import torch.distributed as dist

    mean = teacher_logits.float().reshape(-1, teacher_logits.shape[-1]).mean(0)
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(mean)
        mean /= dist.get_world_size()
    center.mul_(momentum).add_(mean, alpha=1 - momentum)


def random_patch_mask(batch: int, n_patches: int, ratio: float, generator: torch.Generator | None = None,
                      device: torch.device | None = None) -> torch.Tensor:
    """Bool [batch, n_patches]: exactly round(ratio·n) patches per image, uniformly at random (TIPS: 75%)."""
    k = round(ratio * n_patches)
    order = torch.rand(batch, n_patches, generator=generator).argsort(dim=1)
    mask = torch.zeros(batch, n_patches, dtype=torch.bool)
    mask.scatter_(1, order[:, :k], True)
    return mask.to(device) if device is not None else mask


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    """θ_t <- m·θ_t + (1 - m)·θ_s for every parameter (buffers copied)."""
    for t, s in zip(teacher.parameters(), student.parameters()):
        t.mul_(momentum).add_(s.detach(), alpha=1 - momentum)
    for t, s in zip(teacher.buffers(), student.buffers()):
        t.copy_(s)


def cosine_schedule(start: float, end: float, step: int, total: int) -> float:
    """``start`` at step 0 to ``end`` at ``total``, along a half cosine (DINO's momentum schedule)."""
    progress = min(max(step / max(total, 1), 0.0), 1.0)
    return end - (end - start) * (1 + math.cos(math.pi * progress)) / 2


def teacher_momentum(start: float, step: int, total: int) -> float:
    """The EMA momentum applied after update ``step`` (1-based) of ``total``: cosine from ``start`` to 1."""
    return cosine_schedule(start, 1.0, step, total)


def teacher_init_share(start: float, total: int) -> float:
    """How much of the EMA teacher is still its initial weights after ``total`` updates: prod_t m_t."""
    return math.prod(teacher_momentum(start, step, total) for step in range(1, total + 1))


def warmup(start: float, end: float, step: int, warmup_steps: int) -> float:
    """Linear warm-up from ``start`` to ``end`` over ``warmup_steps``, then ``end`` (teacher temperature)."""
    return end if step >= warmup_steps else start + (end - start) * step / max(warmup_steps, 1)
