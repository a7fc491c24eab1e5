"""The Altogether captioner's loss (notes B.3): next-token cross-entropy on the caption (+ EOS) only; the visual
prefix and the alt-text prompt are context, never supervised."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F


def caption_loss(model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Mean cross-entropy over target tokens (caption + EOS) only: the prompt is context, never supervised."""
    width = int(batch["target_keep"].sum(1).max())
    target, target_keep = batch["target_ids"][:, :width], batch["target_keep"][:, :width]
    logits = model(batch["image_emb"], batch["prompt_ids"], batch["prompt_keep"], target)
    ce = F.cross_entropy(logits.float().transpose(1, 2), target, reduction="none")
    loss = (ce * target_keep).sum() / target_keep.sum()
    return loss, {"target_tokens": target_keep.sum(1).float().mean()}
