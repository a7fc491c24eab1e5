"""Teachers trained here: an EDM denoiser fitted with the EDM loss by the shared training loop (resumable,
DDP under torchrun). The 2-D task's exact mixture teacher needs no training; there the same routine fits the
MLP denoiser that initialises the generator and the fake score."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from ..core import dist
from ..core.train import TrainConfig, example_generator, train
from .config import ImageConfig
from .edm import EDMConfig, EDMPrecond, edm_loss, training_sigma
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


def teacher_network(images: ImageConfig, shape: tuple[int, int, int], edm: EDMConfig, num_classes: int = 0,
                    seed: int = 0) -> nn.Module:
    """The image teacher's network: your diffusers UNet (``images.teacher_path``, trained elsewhere) or a fresh
    EDM denoiser of ``images.net`` (to train with :func:`train_denoiser`); also what a generator starts from."""
    if images.teacher_path:
        from .diffusers_teacher import load_diffusers_teacher

        return load_diffusers_teacher(images.teacher_path, shape, num_classes)
    return build_denoiser(images.net, shape, edm, num_classes, seed=seed)


class NoisedData:
    """``data`` with each example's EDM sigma and noise drawn from its own stream
    (:func:`~fmrecipes.core.train.example_generator`), so the teacher trains the same in N processes as in one."""

    def __init__(self, data: TensorData, edm: EDMConfig):
        self.data, self.edm = data, edm

    def __len__(self) -> int:
        return len(self.data)

    def batch(self, indices) -> dict[str, torch.Tensor | None]:
        out = self.data.batch(indices)
        streams = [example_generator(int(i)) for i in indices]
        # each stream's first draw is its sigma's normal, then its noise; the sigmas are computed in one op
        # (a per-example sample_training_sigma(1) gives the same values at several times the cost)
        out["sigma"] = training_sigma(torch.cat([torch.randn(1, generator=g) for g in streams]), self.edm)
        out["noise"] = torch.stack([torch.randn(out["x"].shape[1:], generator=g) for g in streams])
        return out


def train_denoiser(model: EDMPrecond, data: TensorData, cfg: TrainConfig, edm: EDMConfig, run_dir: str | Path,
                   env: dist.DistEnv) -> EDMPrecond:
    """Train (or resume, or load when complete) ``model`` with the EDM loss on ``data`` in ``run_dir``."""
    train(model, NoisedData(data, edm), None, cfg, run_dir, env,
          loss_fn=lambda m, b: edm_loss(m, b["x"], edm, b["y"], b["sigma"], b["noise"]))
    return model.eval()
