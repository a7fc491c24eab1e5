"""Scenes held in memory as tensors (uint8 images, masks, depth) with their texts, for training and probes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from .scene_config import SceneConfig
from .scenes import make_scene


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
    graphs: list[dict]
    alt_text_errors: list[list[dict]]


def scene_pack(cfg: SceneConfig, split: str, n: int, progress: bool = False, start: int = 0) -> ScenePack:
    """Scenes ``start`` .. ``start + n - 1`` of ``split``."""
    scenes = [make_scene(cfg, split, i) for i in tqdm(range(start, start + n), desc=f"scenes {split}",
                                                      disable=not progress, leave=False)]
    return ScenePack(images=torch.from_numpy(np.stack([s.image for s in scenes])),
                     semantic=torch.from_numpy(np.stack([s.semantic for s in scenes])).long(),
                     depth=torch.from_numpy(np.stack([s.depth for s in scenes])),
                     alt_texts=[s.alt_texts for s in scenes], captions=[s.caption for s in scenes],
                     realigned=[s.realigned_caption for s in scenes],
                     labels=[[o["label"] for o in s.graph["objects"]] for s in scenes],
                     graphs=[s.graph for s in scenes], alt_text_errors=[s.alt_text_errors for s in scenes])


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> float [N, 3, H, W] in [0, 1] (TIPS feeds [0, 1] pixels, no normalisation)."""
    return images.permute(0, 3, 1, 2).float().div_(255.0)


def pack_texts(pack: ScenePack) -> list[str]:
    """Every alt-text and dense caption of ``pack`` (a tokenizer's training text)."""
    return [t for alts in pack.alt_texts for t in alts] + pack.captions
