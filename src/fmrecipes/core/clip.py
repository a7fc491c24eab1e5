"""A CLIP dual encoder (one-[CLS] core ViT + text tower, softmax contrastive loss) and its training data:
the image-text model any recipe can train on (image, text) pairs, e.g. Altogether's frozen encoder and its
downstream CLIP study."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from .contrastive import LogitScale, clip_loss
from .text_encoder import FrozenMiniLM, TextConfig, TextEncoder
from .vit import ViT, ViTConfig


class CLIP(nn.Module):
    def __init__(self, vit: ViTConfig, text: TextConfig, init_temperature: float = 0.07, max_scale: float = 100.0):
        super().__init__()
        self.vit = ViT(replace(vit, n_cls=1))
        self.text = FrozenMiniLM(vit.width) if text.kind == "minilm" else TextEncoder(text)
        self.scale = LogitScale(init_temperature, max_scale)

    def forward(self, images: torch.Tensor, ids: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(image [CLS] features, text features, logit scale); :func:`clip_loss_fn` turns them into the loss."""
        return self.vit(images).cls[:, 0], self.text(ids, keep), self.scale()

    @torch.no_grad()
    def encode_images(self, images: torch.Tensor, batch: int = 256) -> torch.Tensor:
        """L2-normalised [CLS] embeddings of float images [N, 3, H, W] (eval mode)."""
        was = self.vit.training
        self.vit.eval()
        out = torch.cat([self.vit(images[i:i + batch]).cls[:, 0] for i in range(0, len(images), batch)])
        self.vit.train(was)
        return F.normalize(out, dim=-1)


def clip_loss_fn(model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The training objective: the contrastive loss of the model's features (open_clip's split)."""
    image, text, scale = model(batch["image"], batch["ids"], batch["keep"])
    loss, acc = clip_loss(image, text, scale)
    return loss, {"clip_acc": acc, "logit_scale": scale.detach()}
