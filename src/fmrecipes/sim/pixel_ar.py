"""Beyond the paper: one SIM step against a pixel-level autoregressive model (issue 30; the seed's comment: "if
image generation itself is the goal, autoregressive models will need to compete with distilled diffusion models").

The project's GPT (``core.gpt``) over quantised pixels: each image becomes [BOS, p_1, ..., p_D], its pixels
quantised to ``levels`` grey levels in raster order (channel, row, column), and the model learns p(p_i | p_<i) by
next-token cross-entropy with the shared training loop (checkpoints, resume). It is sized to about the one-step
generator's parameter count and trained with about the teacher's training compute (forward FLOPs counted on one
example of each, x3 for a training step, times the examples each run sees), so the comparison asks what the same
network budget and the same training compute buy each way. Sampling draws one pixel after another with the key/
value cache (``GPT.generate``); its images per second are timed against one generator step on the same batch.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..core import dist
from ..core.gpt import GPT, GPTConfig
from ..core.train import TrainConfig, train
from .config import PixelARConfig
from .teacher import TensorData


def to_tokens(images: torch.Tensor, levels: int) -> torch.Tensor:
    """(N, C, H, W) in [-1, 1] -> (N, 1 + C*H*W) token ids: BOS (id ``levels``), then each pixel's grey level
    round((x + 1) / 2 * (levels - 1)) in raster order (channel, row, column)."""
    q = ((images.clamp(-1, 1) + 1) / 2 * (levels - 1)).round().long().flatten(1)
    return torch.cat([torch.full((len(q), 1), levels, dtype=torch.long), q], dim=1)


def to_images(tokens: torch.Tensor, shape: tuple[int, ...], levels: int) -> torch.Tensor:
    """The inverse of :func:`to_tokens` (BOS dropped): pixel ids -> (N, C, H, W) grey values in [-1, 1]. BOS is
    never a training target, so a sampled one (vanishingly rare once trained) reads as the top grey level."""
    return (tokens[:, 1:].clamp(max=levels - 1).float() / (levels - 1) * 2 - 1).reshape(len(tokens), *shape)


def gpt_config(cfg: PixelARConfig, pixels: int, d_model: int) -> GPTConfig:
    return GPTConfig(vocab_size=cfg.levels + 1, seq_len=pixels + 1, n_layer=cfg.n_layer, n_head=cfg.n_head,
                     d_model=d_model)


def sized_like(cfg: PixelARConfig, pixels: int, params: int) -> GPTConfig:
    """The GPT whose parameter count is nearest ``params`` over widths that are multiples of 2 x ``n_head`` (an
    even head dimension) at ``n_layer`` blocks; ``cfg.d_model`` when it is set."""
    if cfg.d_model is not None:
        return gpt_config(cfg, pixels, cfg.d_model)
    step = 2 * cfg.n_head
    widths = range(step, 64 * step + 1, step)
    return min((gpt_config(cfg, pixels, d) for d in widths),
               key=lambda c: abs(GPT(c).num_params() - params))


def compute_matched_steps(teacher_flops_per_example: int, teacher: TrainConfig, ar_flops_per_example: int,
                          ar_batch: int) -> int:
    """AR optimiser steps whose training compute (3 x forward FLOPs per example, times the examples seen) equals
    the teacher's: teacher steps x teacher batch x teacher FLOPs / (AR batch x AR FLOPs), at least 1."""
    total = teacher.steps * teacher.batch_size * teacher_flops_per_example
    return max(1, round(total / (ar_batch * ar_flops_per_example)))


def train_pixel_ar(model: GPT, images: torch.Tensor, cfg: TrainConfig, levels: int, run_dir: str | Path,
                   env: dist.DistEnv) -> GPT:
    """Train (or resume, or load when complete) ``model`` on ``images`` by next-pixel cross-entropy."""
    train(model, TensorData(to_tokens(images, levels)), None, cfg, run_dir, env,
          loss_fn=lambda m, b: m(b["x"][:, :-1], targets=b["x"][:, 1:]))
    return model.eval()


@torch.no_grad()
def sample_pixel_ar(model: GPT, n: int, shape: tuple[int, ...], levels: int, temperature: float,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` images drawn pixel by pixel from BOS (key/value cache), as (n, C, H, W) in [-1, 1]."""
    device = next(model.parameters()).device
    bos = torch.full((n, 1), levels, dtype=torch.long, device=device)
    pixels = model.config.seq_len - 1
    return to_images(model.generate(bos, pixels, temperature, generator=generator).cpu(), shape, levels)
