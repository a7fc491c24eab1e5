"""The dense probes' ceiling: the same ViT trained supervised on the training scenes' segmentation masks and
depth, with the variants' steps, batch, learning rate and seed, then probed frozen exactly like them. If even
its features give the linear probes little above the untrained tower's, the dense-probe claims cannot be tested
at this size, whatever the image losses do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core import dist
from ..core.checkpoint import save_model
from ..core.train import train
from ..core.vit import ViT
from ..data.scene_pack import ScenePack, to_float
from .config import TIPSConfig
from .probes import N_SEG_CLASSES, PatchLinear


class SupervisedViT(nn.Module):
    """The variants' ViT with a linear segmentation head and a linear depth head on its patch tokens."""

    def __init__(self, cfg: TIPSConfig, mean_depth: float):
        super().__init__()
        self.vit = ViT(cfg.vit)
        self.seg = PatchLinear(cfg.vit.width, N_SEG_CLASSES)
        self.depth = PatchLinear(cfg.vit.width, 1)
        self.register_buffer("mean_depth", torch.tensor(float(mean_depth)))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-pixel class logits [B, C, H, W] and depth [B, H, W]."""
        patches = self.vit(images).patches
        size = images.shape[-1]
        return self.seg(patches, size), self.depth(patches, size)[:, 0] + self.mean_depth


class MaskData:
    """The training scenes as (image, mask, depth) batches, unaugmented."""

    def __init__(self, pack: ScenePack):
        self.pack = pack

    def __len__(self) -> int:
        return len(self.pack.images)

    def batch(self, indices) -> dict[str, Any]:
        return {"image": to_float(self.pack.images[indices]), "semantic": self.pack.semantic[indices],
                "depth": self.pack.depth[indices].float()}


def supervised_loss(model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-pixel cross-entropy on the masks plus the squared depth error (the two probes' own losses)."""
    logits, depth = model(batch["image"])
    seg = F.cross_entropy(logits, batch["semantic"])
    mse = F.mse_loss(depth, batch["depth"])
    return seg + mse, {"seg_ce": seg.detach(), "depth_mse": mse.detach()}


def train_supervised(cfg: TIPSConfig, pack: ScenePack, run_dir: Path, env: dist.DistEnv) -> ViT:
    """Train (or resume) the ceiling in ``run_dir`` with ``cfg.train`` from ``cfg.seed``; its ViT, saved to
    ``run_dir/vit``."""
    torch.manual_seed(cfg.seed)
    model = SupervisedViT(cfg, float(pack.depth.float().mean()))
    train(model, MaskData(pack), None, cfg.train, run_dir, env=env, loss_fn=supervised_loss)
    if env.is_main:
        save_model(model.vit, run_dir / "vit")
    return model.vit.eval()
