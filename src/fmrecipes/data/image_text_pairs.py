"""Image-text training pairs with CLIP-style augmentation, as the shared training loop's dataset."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..core.text_encoder import TextCodec
from .image_transforms import RandomHorizontalFlip, RandomResizedCrop
from .scene_pack import to_float


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
