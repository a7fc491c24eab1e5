"""The small classifier whose penultimate features define "FD-classifier" (FID's formula, not Inception):
trained here on the same dataset as the teacher (SIM notes A.7.4: "FID on a small MNIST classifier")."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core import dist
from ..core.train import TrainConfig, train
from .teacher import TensorData


class FeatureClassifier(nn.Module):
    """Three 3x3 conv layers (the last two stride 2), global average pool, a 128-d feature layer, logits."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, feature_dim: int = 128):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1), nn.SiLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.SiLU(),
            nn.Conv2d(64, 128, 3, stride=2, padding=1), nn.SiLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, feature_dim), nn.SiLU())
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _xent(model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    logits = model(batch["x"])
    return F.cross_entropy(logits, batch["y"]), {"acc": (logits.argmax(1) == batch["y"]).float().mean()}


def train_classifier(data: TensorData, num_classes: int, cfg: TrainConfig, run_dir: str | Path,
                     env: dist.DistEnv, seed: int = 0) -> FeatureClassifier:
    """Train (or resume, or load when complete) the feature classifier in ``run_dir``."""
    torch.manual_seed(seed)
    model = FeatureClassifier(data.x.shape[1], num_classes)
    train(model, data, None, cfg, run_dir, env, loss_fn=_xent)
    return model.eval()


@torch.no_grad()
def classify(model: FeatureClassifier, images: torch.Tensor, batch: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """``(features [N, 128], predicted class [N])`` on the model's device, returned on the CPU."""
    device = next(model.parameters()).device
    feats, preds = [], []
    for chunk in images.split(batch):
        f = model.features(chunk.to(device))
        feats.append(f.float().cpu())
        preds.append(model.head(f).argmax(1).cpu())
    return torch.cat(feats), torch.cat(preds)


def rotations(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image turned by 0, 90, 180 and 270 degrees, labelled 0..3: the task the FD network learns on an
    unlabelled set (RotNet, Gidaris et al. 2018), so its features still see shape and orientation."""
    turned = torch.cat([torch.rot90(images, k, dims=(2, 3)) for k in range(4)])
    return turned, torch.arange(4).repeat_interleave(len(images))
