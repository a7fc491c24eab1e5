"""A DINOv2/TIPS-style Vision Transformer returning its [CLS] token(s) and patch tokens.

TIPS (arXiv 2410.16512, notes A.2): patch embedding (or, as an option, the convolutional stem of Xiao et al. 2021,
"Early convolutions help transformers see better"), learned position embeddings on patches only, ``n_cls``
learned zero-initialised [CLS] tokens prepended after the positions are added (TIPS uses two: CLS1 for
web alt-text, CLS2 for synthetic captions), pre-LN blocks with qkv bias, LayerScale and a GELU MLP, and a
final LayerNorm (eps 1e-6). Masked image modelling replaces chosen patch embeddings by a learned
``mask_token`` before the positions are added (iBOT). Other input sizes (local crops) interpolate the
position grid bicubically.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from .transformer import Block

STEMS = ("patch", "conv")  # the patch embedding: ViT's patchify convolution, or ConvStem


@dataclass
class ViTConfig:
    image_size: int = 64
    patch_size: int = 8
    width: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    n_cls: int = 1
    layerscale: float = 0.1  # LayerScale init; DINOv2 uses 1e-5 for deep models, small models train faster larger
    mask_token: bool = False  # a learned [MASK] embedding for masked image modelling (iBOT)
    # patch: a patch_size x patch_size stride-patch_size convolution (ViT, TIPS); conv: ConvStem (Xiao et al. 2021),
    # the same token grid from overlapping 3x3 convolutions, which small ViTs trained on little data learn shapes from
    # faster. Its batch norm is per process under torchrun (no SyncBatchNorm), as in plain DDP. With masked image
    # modelling, a masked cell's pixels still reach its neighbours' tokens through the overlapping windows
    stem: str = "patch"

    def validate(self) -> None:
        if self.image_size % self.patch_size:
            raise ConfigError(f"vit.image_size={self.image_size} must be a multiple of vit.patch_size="
                              f"{self.patch_size}")
        if self.width % self.heads:
            raise ConfigError(f"vit.width={self.width} must be divisible by vit.heads={self.heads}")
        if self.n_cls < 1:
            raise ConfigError(f"vit.n_cls={self.n_cls} must be at least 1")
        if self.stem not in STEMS:
            raise ConfigError(f"vit.stem={self.stem!r} is unknown; choose one of {', '.join(STEMS)}")
        if self.stem == "conv" and (self.patch_size < 2 or self.patch_size & (self.patch_size - 1)):
            raise ConfigError(f"vit.stem=conv halves the image per 3x3 stride-2 convolution: vit.patch_size="
                              f"{self.patch_size} must be a power of 2 (2, 4, 8, ...)")

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size


class ConvStem(nn.Sequential):
    """The convolutional stem of Xiao et al. 2021 (ViT_C, Sec. 3): log2(patch_size) 3x3 stride-2 convolutions,
    each followed by batch norm and ReLU, whose widths double up to the model's width, then a 1x1 convolution to
    it. Its token grid is the patchify stem's (one token per patch_size x patch_size cell), but each token sees its
    cell's neighbours through the overlapping 3x3 windows."""

    def __init__(self, patch_size: int, width: int):
        convs = patch_size.bit_length() - 1
        layers: list[nn.Module] = []
        channels = 3
        for i in range(convs):
            out = max(1, width >> (convs - 1 - i))
            layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU()]
            channels = out
        layers.append(nn.Conv2d(channels, width, 1))
        super().__init__(*layers)


@dataclass
class ViTOutput:
    cls: torch.Tensor      # [B, n_cls, D], after the final LayerNorm
    patches: torch.Tensor  # [B, N, D], after the final LayerNorm


class ViT(nn.Module):
    def __init__(self, cfg: ViTConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.patch_embed = (ConvStem(cfg.patch_size, cfg.width) if cfg.stem == "conv"
                            else nn.Conv2d(3, cfg.width, cfg.patch_size, stride=cfg.patch_size))
        self.pos_embed = nn.Parameter(torch.randn(1, cfg.grid * cfg.grid, cfg.width) * 0.02)
        self.cls_tokens = nn.Parameter(torch.zeros(1, cfg.n_cls, cfg.width))
        self.mask_token = nn.Parameter(torch.zeros(1, 1, cfg.width)) if cfg.mask_token else None
        self.blocks = nn.ModuleList(Block(cfg.width, cfg.heads, cfg.mlp_ratio, "gelu", cfg.layerscale)
                                    for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.width, eps=1e-6)
        self.apply(_init)

    def positions(self, grid: int) -> torch.Tensor:
        if grid == self.cfg.grid:
            return self.pos_embed
        g = self.cfg.grid
        table = self.pos_embed.reshape(1, g, g, -1).permute(0, 3, 1, 2)
        table = F.interpolate(table, size=(grid, grid), mode="bicubic", align_corners=False, antialias=grid < g)
        return table.permute(0, 2, 3, 1).reshape(1, grid * grid, -1)

    def forward(self, images: torch.Tensor, mask: torch.Tensor | None = None, layers: int = 1) -> ViTOutput:
        """``images`` [B, 3, H, W] (H = W, a multiple of the patch size); ``mask`` bool [B, N]: patches to
        replace by the mask token. ``layers`` > 1: the patch tokens of the last ``layers`` blocks, each after the
        final LayerNorm, concatenated along the channels [B, N, layers·D] (DINOv2's
        ``get_intermediate_layers(n, norm=True)``, what its linear probes read); the [CLS] tokens stay the last
        block's."""
        if not 1 <= layers <= self.cfg.depth:
            raise ValueError(f"layers={layers} must be between 1 and the depth {self.cfg.depth}")
        x = self.patch_embed(images)
        grid = x.shape[-1]
        x = x.flatten(2).transpose(1, 2)
        if mask is not None:
            if self.mask_token is None:
                raise ValueError("this ViT has no mask token (ViTConfig.mask_token=False)")
            x = torch.where(mask[..., None], self.mask_token.to(x.dtype), x)
        x = x + self.positions(grid)
        x = torch.cat([self.cls_tokens.expand(len(x), -1, -1), x], dim=1)
        hidden = []
        for block in self.blocks:
            x = block(x)
            hidden.append(x)
        x = self.norm(x)
        n = self.cfg.n_cls
        patches = torch.cat([self.norm(h[:, n:]) for h in hidden[-layers:]], -1) if layers > 1 else x[:, n:]
        return ViTOutput(cls=x[:, :n], patches=patches)


def _init(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
