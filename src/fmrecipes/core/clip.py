"""A CLIP dual encoder (one-[CLS] core ViT + text tower, softmax contrastive loss) and its training data:
the image-text model any recipe can train on (image, text) pairs, e.g. Altogether's frozen encoder and its
downstream CLIP study."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data.image_transforms import RandomHorizontalFlip, RandomResizedCrop
from ..data.scene_pack import to_float
from .contrastive import LogitScale, clip_loss
from .text_encoder import FrozenMiniLM, TextCodec, TextConfig, TextEncoder
from .vit import ViT, ViTConfig


class CLIP(nn.Module):
    def __init__(self, vit: ViTConfig, text: TextConfig, init_temperature: float = 0.07, max_scale: float = 100.0):
        super().__init__()
        self.vit = ViT(replace(vit, n_cls=1))
        self.text = FrozenMiniLM(vit.width) if text.kind == "minilm" else TextEncoder(text)
        self.scale = LogitScale(init_temperature, max_scale)

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        scale = self.scale()
        loss, acc = clip_loss(self.vit(batch["image"]).cls[:, 0], self.text(batch["ids"], batch["keep"]), scale)
        return loss, {"clip_acc": acc, "logit_scale": scale.detach()}

    @torch.no_grad()
    def encode_images(self, images: torch.Tensor, batch: int = 256) -> torch.Tensor:
        """L2-normalised [CLS] embeddings of float images [N, 3, H, W] (eval mode)."""
        was = self.vit.training
        self.vit.eval()
        out = torch.cat([self.vit(images[i:i + batch]).cls[:, 0] for i in range(0, len(images), batch)])
        self.vit.train(was)
        return F.normalize(out, dim=-1)


def clip_loss_fn(model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    return model(batch)


class ImageTextData:
    """Trainer dataset of uint8 images [N, H, W, 3] and a text per draw: ``text(i, generator)`` (e.g. a random
    alt-text, or a caption 15% of the time). Each example is a random resized crop of ``scale`` and a
    horizontal flip that also swaps left/right in its text; augmentation draws from the global RNG, which the
    trainer reseeds every step."""

    def __init__(self, images: torch.Tensor, text: Callable[[int, torch.Generator], str], codec: TextCodec,
                 scale: tuple[float, float] = (0.7, 1.0)):
        self.images, self.text, self.codec = images, text, codec
        self.crop, self.flip = RandomResizedCrop(images.shape[1], tuple(scale)), RandomHorizontalFlip()

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, indices) -> dict[str, Any]:
        g = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,))))
        views = [self.flip(self.crop({"image": to_float(self.images[i:i + 1])[0],
                                      "caption": self.text(i, g)}, g), g) for i in indices.tolist()]
        ids, keep = self.codec([v["caption"] for v in views])
        return {"image": torch.stack([v["image"] for v in views]), "ids": ids, "keep": keep}
