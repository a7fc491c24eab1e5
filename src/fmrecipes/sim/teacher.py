"""Teachers trained here: an EDM denoiser fitted with the EDM loss by the shared training loop (resumable,
DDP under torchrun). The 2-D task's exact mixture teacher needs no training; there the same routine fits the
MLP denoiser that initialises the generator and the fake score."""

from __future__ import annotations

from pathlib import Path

import torch

from ..core import dist
from ..core.train import TrainConfig, train
from .edm import EDMConfig, EDMPrecond, edm_loss
from .nets import NetConfig, build_net


class TensorData:
    """In-memory examples for :func:`fmrecipes.core.train.train`: ``batch(idx) -> {"x", "y"}``."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor | None = None):
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def batch(self, indices) -> dict[str, torch.Tensor | None]:
        return {"x": self.x[indices], "y": None if self.y is None else self.y[indices]}


def build_denoiser(net: NetConfig, shape: tuple[int, ...], edm: EDMConfig, num_classes: int = 0,
                   seed: int = 0) -> EDMPrecond:
    torch.manual_seed(seed)
    return EDMPrecond(build_net(net, shape, num_classes), edm.sigma_data)


def train_denoiser(model: EDMPrecond, data: TensorData, cfg: TrainConfig, edm: EDMConfig, run_dir: str | Path,
                   env: dist.DistEnv) -> EDMPrecond:
    """Train (or resume, or load when complete) ``model`` with the EDM loss on ``data`` in ``run_dir``."""
    train(model, data, None, cfg, run_dir, env, loss_fn=lambda m, b: edm_loss(m, b["x"], edm, b["y"]))
    return model.eval()
