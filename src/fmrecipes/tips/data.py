"""TIPS training data: FashionScenes images with their web alt-texts (the noisy caption) and dense captions
(the synthetic caption), augmented into one global crop plus local crops, and tokenised."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..core.tokenizer import load_tokenizer, train_bpe
from ..data.image_transforms import RandomHorizontalFlip, RandomResizedCrop
from ..data.scene_config import SceneConfig
from ..data.scenes import make_scene
from .config import TIPSConfig
from .ssl import random_patch_mask


@dataclass
class ScenePack:
    """``n`` scenes of a split held in memory: uint8 images [N, H, W, 3], masks, depth and texts."""

    images: torch.Tensor
    semantic: torch.Tensor
    depth: torch.Tensor
    alt_texts: list[list[str]]
    captions: list[str]
    realigned: list[str]
    labels: list[list[int]]  # Fashion-MNIST class of each object


def scene_pack(cfg: SceneConfig, split: str, n: int, progress: bool = False) -> ScenePack:
    scenes = [make_scene(cfg, split, i) for i in tqdm(range(n), desc=f"scenes {split}", disable=not progress,
                                                      leave=False)]
    return ScenePack(images=torch.from_numpy(np.stack([s.image for s in scenes])),
                     semantic=torch.from_numpy(np.stack([s.semantic for s in scenes])).long(),
                     depth=torch.from_numpy(np.stack([s.depth for s in scenes])),
                     alt_texts=[s.alt_texts for s in scenes], captions=[s.caption for s in scenes],
                     realigned=[s.realigned_caption for s in scenes],
                     labels=[[o["label"] for o in s.graph["objects"]] for s in scenes])


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> float [N, 3, H, W] in [0, 1] (TIPS feeds [0, 1] pixels, no normalisation)."""
    return images.permute(0, 3, 1, 2).float().div_(255.0)


class TextCodec:
    """Lower-cases and tokenises texts for the text tower (TIPS: lower-cased, max length 64, pad 0)."""

    def __init__(self, tokenizer, max_len: int):
        self.tokenizer, self.max_len = tokenizer, max_len

    def __call__(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.tokenizer([t.lower() for t in texts], padding="longest", truncation=True,
                             max_length=self.max_len, return_tensors="pt")
        return enc["input_ids"], enc["attention_mask"].bool()


def text_codec(cfg: TIPSConfig, texts: list[str], tokenizer_dir: Path) -> TextCodec:
    """The tokenizer of ``cfg.text.kind``: MiniLM's own WordPiece, or a byte-level BPE trained on ``texts``
    (once, in ``tokenizer_dir``)."""
    if cfg.text.kind == "minilm":
        from transformers import AutoTokenizer

        from ..core.text_encoder import minilm_dir

        return TextCodec(AutoTokenizer.from_pretrained(str(minilm_dir())), cfg.text.max_len)
    if not (tokenizer_dir / "tokenizer.json").is_file():
        train_bpe((t.lower() for t in texts), cfg.tokenizer_vocab, tokenizer_dir)
    return TextCodec(load_tokenizer(tokenizer_dir), cfg.text.max_len)


def pack_texts(pack: ScenePack) -> list[str]:
    return [t for alts in pack.alt_texts for t in alts] + pack.captions


class TIPSData:
    """The trainer's dataset: ``batch(indices)`` draws its augmentations from the global RNG, which the
    trainer reseeds every step, so a resumed run replays the same crops, flips, alt-texts and masks."""

    def __init__(self, pack: ScenePack, codec: TextCodec, cfg: TIPSConfig, variant: str):
        self.pack, self.codec, self.cfg, self.flags = pack, codec, cfg, cfg.flags(variant)
        self.global_crop = RandomResizedCrop(cfg.vit.image_size, tuple(cfg.global_scale))
        self.local_crop = RandomResizedCrop(cfg.ssl.local_size, tuple(cfg.ssl.local_scale))
        self.flip = RandomHorizontalFlip()

    def __len__(self) -> int:
        return len(self.pack.captions)

    def batch(self, indices) -> dict[str, Any]:
        g = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,))))
        images, locals_, alts, syns = [], [], [], []
        for i in indices.tolist():
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
        batch: dict[str, Any] = {"image": torch.stack(images)}
        batch["alt_ids"], batch["alt_keep"] = self.codec(alts)
        if self.flags["dual_cls"]:
            batch["syn_ids"], batch["syn_keep"] = self.codec(syns)
        if self.flags["distill"]:
            batch["locals"] = torch.stack(locals_, dim=1)  # [M, B, 3, s, s]
        if self.flags["mim"]:
            batch["mask"] = random_patch_mask(len(images), self.cfg.vit.grid ** 2, self.cfg.ssl.mask_ratio, g)
        return batch
