"""The raw networks F(x_in, c_noise, class_labels) that :class:`~fmrecipes.sim.edm.EDMPrecond` wraps.

An MLP for 2-D data (SIM notes A.7.3: "an MLP conditioned on log sigma") and a small UNet for images
(diffusers ``UNet2DModel``, the notes' A.7.4 "small EDM teacher").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import torch
import torch.nn as nn

from ..errors import ConfigError


@dataclass
class NetConfig:
    kind: str = "mlp"                  # mlp (vectors) | unet (images)
    hidden: int = 128                  # mlp width
    depth: int = 3                     # mlp hidden layers
    channels: list[int] = field(default_factory=lambda: [32, 64])  # unet width per resolution
    layers_per_block: int = 1
    attention: bool = False            # unet: self-attention at the lowest resolution
    emb_dim: int = 64                  # mlp noise embedding
    dropout: float = 0.0

    def validate(self, prefix: str = "net") -> None:
        if self.kind not in ("mlp", "unet"):
            raise ConfigError(f"{prefix}.kind={self.kind!r} is unknown; choose mlp or unet")
        if self.kind == "unet" and not self.channels:
            raise ConfigError(f"{prefix}.channels must list at least one width")


UNET_GROUPS = 8  # the UNet's group norm groups: every width is a multiple of it


def scaled(cfg: NetConfig, multiplier: float, prefix: str = "net") -> NetConfig:
    """``cfg`` with every width times ``multiplier``: the MLP's hidden width, or the UNet's channels rounded to a
    multiple of its group norm's :data:`UNET_GROUPS` (depth, blocks and embeddings unchanged)."""
    if multiplier <= 0:
        raise ConfigError(f"{prefix} width multiplier {multiplier} must be positive")
    if cfg.kind == "mlp":
        return replace(cfg, hidden=max(1, round(cfg.hidden * multiplier)))
    channels = [round(c * multiplier / UNET_GROUPS) * UNET_GROUPS for c in cfg.channels]
    if min(channels) < UNET_GROUPS:
        raise ConfigError(f"{prefix} width multiplier {multiplier} gives unet channels {channels}: each must be at "
                          f"least the group norm's {UNET_GROUPS} groups")
    return replace(cfg, channels=channels)


# c_noise = ln(sigma) / 4 spans about [-1.6, 1.1]; scaled so that sinusoidal features with periods
# 2pi .. 2pi·1e4 (transformer / diffusers style) resolve it.
NOISE_SCALE = 250.0


def sinusoidal(c_noise: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer-style positional features of the scalar noise level (EDM's PositionalEmbedding)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=c_noise.device, dtype=torch.float32) / half)
    angle = (c_noise.float() * NOISE_SCALE)[:, None] * freqs[None, :]
    return torch.cat([angle.cos(), angle.sin()], dim=1).to(c_noise.dtype)


class MLPNet(nn.Module):
    """x_in (+ noise and class embeddings) -> SiLU MLP -> a vector of the input's size."""

    def __init__(self, dim: int, cfg: NetConfig, num_classes: int = 0):
        super().__init__()
        self.dim, self.emb_dim = dim, cfg.emb_dim
        self.noise = nn.Sequential(nn.Linear(cfg.emb_dim, cfg.hidden), nn.SiLU())
        self.label = nn.Embedding(num_classes, cfg.hidden) if num_classes else None
        self.inp = nn.Linear(dim, cfg.hidden)
        layers: list[nn.Module] = []
        for _ in range(cfg.depth):
            layers += [nn.SiLU(), nn.Dropout(cfg.dropout), nn.Linear(cfg.hidden, cfg.hidden)]
        self.body = nn.Sequential(*layers, nn.SiLU())
        self.out = nn.Linear(cfg.hidden, dim)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor, class_labels: torch.Tensor | None = None):
        h = self.inp(x.flatten(1)) + self.noise(sinusoidal(c_noise, self.emb_dim))
        if self.label is not None and class_labels is not None:
            h = h + self.label(class_labels)
        return self.out(self.body(h)).reshape(x.shape)


class UNetNet(nn.Module):
    """diffusers ``UNet2DModel`` with EDM's noise input: ``F(x_in, c_noise, labels)``."""

    def __init__(self, image_size: int, in_channels: int, cfg: NetConfig, num_classes: int = 0):
        super().__init__()
        from diffusers import UNet2DModel

        n = len(cfg.channels)
        down = ["DownBlock2D"] * n
        up = ["UpBlock2D"] * n
        if cfg.attention and n > 1:
            down[-1], up[0] = "AttnDownBlock2D", "AttnUpBlock2D"
        self.unet = UNet2DModel(
            sample_size=image_size, in_channels=in_channels, out_channels=in_channels,
            block_out_channels=tuple(cfg.channels), layers_per_block=cfg.layers_per_block,
            down_block_types=tuple(down), up_block_types=tuple(up), norm_num_groups=UNET_GROUPS,
            dropout=cfg.dropout,
            num_class_embeds=num_classes or None, add_attention=cfg.attention, time_embedding_type="positional",
            flip_sin_to_cos=True, freq_shift=0)

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor, class_labels: torch.Tensor | None = None):
        kwargs = {"class_labels": class_labels} if class_labels is not None else {}
        return self.unet(x, c_noise * NOISE_SCALE, **kwargs).sample


def build_net(cfg: NetConfig, shape: tuple[int, ...], num_classes: int = 0) -> nn.Module:
    """The raw network for samples of ``shape`` (``(D,)`` vectors or ``(C, H, W)`` images)."""
    if cfg.kind == "mlp":
        return MLPNet(math.prod(shape), cfg, num_classes)
    if len(shape) != 3:
        raise ConfigError(f"a unet needs image samples (C, H, W); got shape {shape}")
    c, h, w = shape
    if h != w or h % (2 ** (len(cfg.channels) - 1)):
        raise ConfigError(f"unet channels {cfg.channels} need a square image whose side ({h}) halves "
                          f"{len(cfg.channels) - 1} times")
    return UNetNet(h, c, cfg, num_classes)
