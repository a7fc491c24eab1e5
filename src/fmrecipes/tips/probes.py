"""Frozen-feature evaluation of any core ViT (and its text tower): zero-shot classification, image-text
retrieval R@1, a linear segmentation probe (mIoU) and a linear depth probe (RMSE) on patch tokens, each with
a fixed budget and seed (TIPS notes A.5: linear probes "similar to DINOv2", NYU-style depth RMSE)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.vit import ViT, ViTOutput
from ..data.fashion_mnist import CLASSES
from .config import ProbeConfig


@torch.no_grad()
def encode_images(vit: ViT, images: torch.Tensor, batch: int = 256, layers: int = 1) -> ViTOutput:
    """[CLS] tokens and patch tokens (of the last ``layers`` blocks, concatenated) of float images [N, 3, H, W], in
    eval mode."""
    was = vit.training
    vit.eval()
    outs = [vit(images[i:i + batch], layers=layers) for i in range(0, len(images), batch)]
    vit.train(was)
    return ViTOutput(cls=torch.cat([o.cls for o in outs]), patches=torch.cat([o.patches for o in outs]))


class PatchLinear(nn.Module):
    """A linear map on each patch token, its [N, C, g, g] output upsampled bilinearly to the pixels; with
    ``batch_norm`` the tokens are batch-normalised first (DINOv2's linear segmentation head, a BN then a 1x1
    convolution)."""

    def __init__(self, dim: int, out: int, batch_norm: bool = False):
        super().__init__()
        self.norm = nn.BatchNorm1d(dim) if batch_norm else nn.Identity()
        self.linear = nn.Linear(dim, out)

    def forward(self, patches: torch.Tensor, size: int) -> torch.Tensor:
        n, p, d = patches.shape
        g = int(p ** 0.5)
        tokens = self.norm(patches.reshape(n * p, d)).reshape(n, p, d)
        logits = self.linear(tokens).transpose(1, 2).reshape(n, -1, g, g)
        return F.interpolate(logits, size=(size, size), mode="bilinear", align_corners=False)


def fit_probe(patches: torch.Tensor, target: torch.Tensor, out: int, loss: Callable, cfg: ProbeConfig) -> PatchLinear:
    """Train a :class:`PatchLinear` on frozen ``patches`` for ``cfg.steps`` AdamW steps (seeded), the learning
    rate decayed to 0 along a cosine so that the (convex) probe settles at its optimum instead of jittering
    around it with the last minibatches."""
    patches = patches.detach()
    torch.manual_seed(cfg.seed)
    probe = PatchLinear(patches.shape[-1], out, cfg.batch_norm)
    opt = torch.optim.AdamW(probe.parameters(), lr=cfg.lr, weight_decay=1e-4)
    decay = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.5 * (1 + math.cos(math.pi * t / cfg.steps)))
    g = torch.Generator().manual_seed(cfg.seed)
    size = target.shape[-1]
    for _ in range(cfg.steps):
        idx = torch.randint(len(patches), (cfg.batch_size,), generator=g)
        with torch.enable_grad():
            value = loss(probe(patches[idx], size), target[idx])
            opt.zero_grad(set_to_none=True)
            value.backward()
        opt.step()
        decay.step()
    return probe.eval()


N_SEG_CLASSES = len(CLASSES) + 1  # background and the ten Fashion-MNIST classes


def iou(p: torch.Tensor, t: torch.Tensor) -> float | None:
    """Intersection over union of two boolean masks, accumulated over the set; None when both are empty."""
    union = (p | t).sum().item()
    return (p & t).sum().item() / union if union else None


def class_ious(pred: torch.Tensor, target: torch.Tensor, n_classes: int) -> list[float | None]:
    """Each class's IoU (None for a class in neither ``target`` nor ``pred``)."""
    return [iou(pred == c, target == c) for c in range(n_classes)]


def mean_iou(pred: torch.Tensor, target: torch.Tensor, n_classes: int) -> float:
    """Mean over classes present in ``target`` or ``pred`` of intersection / union, accumulated over the set."""
    ious = [v for v in class_ious(pred, target, n_classes) if v is not None]
    return sum(ious) / len(ious)


def iou_parts(pred: torch.Tensor, target: torch.Tensor, n_classes: int) -> dict[str, float]:
    """The mIoU's parts, so that a floor set by the background alone shows: the background's IoU (class 0), the
    mean IoU of the object classes present, and the foreground's IoU (any object against background)."""
    ious = class_ious(pred, target, n_classes)
    objects = [v for v in ious[1:] if v is not None]
    return {"background": ious[0] or 0.0, "classes": sum(objects) / len(objects) if objects else 0.0,
            "foreground": iou(pred != 0, target != 0) or 0.0}


def segmentation_probe(train_patches: torch.Tensor, train_masks: torch.Tensor, test_patches: torch.Tensor,
                       test_masks: torch.Tensor, cfg: ProbeConfig, n_classes: int = N_SEG_CLASSES
                       ) -> tuple[float, torch.Tensor]:
    """mIoU of a linear per-patch classifier (background + 10 classes); also its test predictions."""
    probe = fit_probe(train_patches, train_masks, n_classes, F.cross_entropy, cfg)
    with torch.no_grad():
        pred = torch.cat([probe(test_patches[i:i + 256], test_masks.shape[-1]).argmax(1)
                          for i in range(0, len(test_patches), 256)])
    return mean_iou(pred, test_masks, n_classes), pred


def depth_probe(train_patches: torch.Tensor, train_depth: torch.Tensor, test_patches: torch.Tensor,
                test_depth: torch.Tensor, cfg: ProbeConfig) -> float:
    """RMSE (depth units) of a linear per-patch depth regressor trained with the squared error. The targets are
    centred on the training set's mean depth (added back to the predictions): the probe's bias starts at 0, and an
    uncentred target would spend the probe's budget on learning the mean depth instead of reading the features."""
    def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(pred[:, 0], target)

    centre = train_depth.float().mean()
    probe = fit_probe(train_patches, train_depth - centre, 1, mse, cfg)
    with torch.no_grad():
        sq = sum(((probe(test_patches[i:i + 256], test_depth.shape[-1])[:, 0] + centre - test_depth[i:i + 256]) ** 2
                  ).sum() for i in range(0, len(test_patches), 256))
    return (sq / test_depth.numel()).sqrt().item()


def mean_depth_rmse(train_depth: torch.Tensor, test_depth: torch.Tensor) -> float:
    """The depth probe's floor: the RMSE of predicting the training set's mean depth at every pixel."""
    return (test_depth.float() - train_depth.float().mean()).pow(2).mean().sqrt().item()
