"""Model FLOPs of a decoder-only transformer, counted from its shapes (the PaLM paper's MFU formula, App. B, as
nanoGPT's ``estimate_mfu`` uses it), and model FLOP utilisation against a measured peak.

Per token, a forward pass costs ``2·N`` for the matrix multiplies of the ``N`` non-embedding parameters plus the
LM head (``2·d·V``), and ``2·2·L·T·d`` for attention's two score/value products over a context of ``T`` (counted
in full, as PaLM does, although a causal mask halves the useful work); training is three times the forward
(backward = 2x forward). Norms, activations, softmax and the optimiser are not counted: MFU is the useful
matrix-multiply work over what the machine could do.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from .gpt import GPTConfig


def matmul_params(cfg: GPTConfig) -> int:
    """Weights that take part in a matrix multiply per token: each block's QKV, projection and MLP, and the head
    (the token embedding is a lookup, not a multiply)."""
    d = cfg.d_model
    hidden = int(cfg.mlp_ratio * d)
    return cfg.n_layer * (4 * d * d + 2 * d * hidden) + d * cfg.vocab_size


def forward_flops_per_token(cfg: GPTConfig, context: int | None = None) -> float:
    """FLOPs of one token's forward pass at a context of ``context`` tokens (default ``cfg.seq_len``)."""
    t = cfg.seq_len if context is None else context
    return 2.0 * matmul_params(cfg) + 4.0 * cfg.n_layer * t * cfg.d_model


def train_flops_per_token(cfg: GPTConfig) -> float:
    """FLOPs of one token's training step (forward and backward: 3x the forward)."""
    return 3.0 * forward_flops_per_token(cfg)


def utilisation(flops_per_s: float, peak_flops_per_s: float) -> float:
    """Model FLOP utilisation: achieved model FLOP/s over the machine's measured peak."""
    if peak_flops_per_s <= 0:
        raise ValueError(f"peak_flops_per_s={peak_flops_per_s} must be positive")
    return flops_per_s / peak_flops_per_s


def counted_forward_flops(forward: Callable, *inputs) -> int:
    """FLOPs of one call ``forward(*inputs)`` without gradient, counted by torch's FLOP counter (matrix multiplies,
    convolutions, attention): for networks that have no shape formula here, such as a UNet."""
    with torch.no_grad(), FlopCounterMode(display=False) as count:
        forward(*inputs)
    return count.get_total_flops()
