"""A bidirectional pre-LN transformer block (ViT, text towers, caption mappers).

    h   = x + γ1 · Attn(LN1(x))
    out = h + γ2 · MLP(LN2(h))

γ are LayerScale gains (DINOv2/TIPS image towers) or fixed 1 (``layerscale=None``). Attention is
``F.scaled_dot_product_attention`` with an optional key padding mask.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}


class LayerScale(nn.Module):
    def __init__(self, dim: int, init: float):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Block(nn.Module):
    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.0, activation: str = "gelu",
                 layerscale: float | None = None, dropout: float = 0.0, eps: float = 1e-6, qkv_bias: bool = True):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.ln1, self.ln2 = nn.LayerNorm(width, eps=eps), nn.LayerNorm(width, eps=eps)
        self.qkv = nn.Linear(width, 3 * width, bias=qkv_bias)
        self.proj = nn.Linear(width, width)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), ACTIVATIONS[activation](), nn.Dropout(dropout),
                                 nn.Linear(hidden, width))
        self.ls1 = LayerScale(width, layerscale) if layerscale is not None else nn.Identity()
        self.ls2 = LayerScale(width, layerscale) if layerscale is not None else nn.Identity()
        self.drop = nn.Dropout(dropout)

    def attention(self, x: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        mask = key_mask[:, None, None, :] if key_mask is not None else None
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                             dropout_p=self.dropout if self.training else 0.0)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``key_mask``: bool [B, N], True for tokens that may be attended to (False = padding)."""
        x = x + self.drop(self.ls1(self.attention(self.ln1(x), key_mask)))
        return x + self.drop(self.ls2(self.mlp(self.ln2(x))))
