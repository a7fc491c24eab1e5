"""TIPS training data: FashionScenes images with their web alt-texts (the noisy caption) and dense captions
(the synthetic caption), augmented into one global crop plus local crops, and tokenised."""

from __future__ import annotations

from typing import Any

import torch

from ..core.text_encoder import TextCodec
from ..core.train import example_generator
from ..data.image_transforms import RandomHorizontalFlip, RandomResizedCrop
from ..data.scene_pack import ScenePack, to_float
from .config import TIPSConfig
from .ssl import random_patch_mask


class TIPSData:
    """The trainer's dataset: ``batch(indices)`` draws each example's augmentations from its own
    :func:`example_generator`, so N processes see the augmentations one process sees at the same global batch."""

    def __init__(self, pack: ScenePack, codec: TextCodec, cfg: TIPSConfig, variant: str):
        self.pack, self.codec, self.cfg, self.flags = pack, codec, cfg, cfg.flags(variant)
        self.global_crop = RandomResizedCrop(cfg.vit.image_size, tuple(cfg.global_scale))
        self.local_crop = RandomResizedCrop(cfg.ssl.local_size, tuple(cfg.ssl.local_scale))
        self.flip = RandomHorizontalFlip()

    def __len__(self) -> int:
        return len(self.pack.captions)

    def batch(self, indices) -> dict[str, Any]:
        images, locals_, alts, syns, masks = [], [], [], [], []
        for i in indices.tolist():
            g = example_generator(i)
            image = to_float(self.pack.images[i:i + 1])[0]
            usable = [t for t in self.pack.alt_texts[i] if t.strip()] or [""]
            alt = usable[int(torch.randint(len(usable), (1,), generator=g))]
            view = self.flip(self.global_crop({"image": image, "caption": self.pack.captions[i],
                                               "alt_texts": [alt]}, g), g)
            images.append(view["image"])
            alts.append(view["alt_texts"][0])
            syns.append(view["caption"])
            if self.flags["distill"]:
                locals_.append(torch.stack([self.local_crop({"image": image}, g)["image"]
                                            for _ in range(self.cfg.ssl.n_local)]))
            if self.flags["mim"]:
                masks.append(random_patch_mask(1, self.cfg.vit.grid ** 2, self.cfg.ssl.mask_ratio, g)[0])
        batch: dict[str, Any] = {"image": torch.stack(images)}
        batch["alt_ids"], batch["alt_keep"] = self.codec(alts)
        if self.flags["dual_cls"]:
            batch["syn_ids"], batch["syn_keep"] = self.codec(syns)
        if self.flags["distill"]:
            batch["locals"] = torch.stack(locals_, dim=1)  # [M, B, 3, s, s]
        if self.flags["mim"]:
            batch["mask"] = torch.stack(masks)
        return batch
