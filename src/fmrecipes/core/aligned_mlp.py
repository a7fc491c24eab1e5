"""MLP hidden widths padded to a multiple of 16 for inference, computing the same function.

A matrix multiply whose output width is not a multiple of the vector width runs far below peak on CPUs
(measured on 2 AVX-512 cores: a 4096x256 by 256x683 product at 100 GFLOP/s, the same with 688 columns at
179). Llama-style MLPs sized 8/3·d often have such widths. Padding the hidden layer with zero units is exact:
SwiGLU's zero ``up`` rows make act(gate)·0 = 0 and GELU(0) = 0, and the zero columns of the down / second
projection add nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn as nn

ALIGN = 16  # floats per 64-byte vector (AVX-512)


def _padded(lin: nn.Linear, out_features: int | None = None, in_features: int | None = None) -> nn.Linear:
    """A copy of ``lin`` with zero output rows / input columns added up to the given sizes."""
    o, i = out_features or lin.out_features, in_features or lin.in_features
    new = nn.Linear(i, o, bias=lin.bias is not None, device="meta")  # no initialisation: every value is set below
    weight = torch.zeros(o, i, device=lin.weight.device, dtype=lin.weight.dtype)
    weight[:lin.out_features, :lin.in_features] = lin.weight.detach()
    new.weight = nn.Parameter(weight, requires_grad=False)
    if lin.bias is not None:
        bias = torch.zeros(o, device=lin.bias.device, dtype=lin.bias.dtype)
        bias[:lin.out_features] = lin.bias.detach()
        new.bias = nn.Parameter(bias, requires_grad=False)
    return new


def _mlp_roles(module: nn.Module) -> tuple[list[str], str] | None:
    """(the projections into the hidden layer, the one out of it) of a SwiGLU MLP (Hugging Face Llama family)
    or of fmrecipes' GELU MLP; None for any other module."""
    from .gpt import MLP

    if all(isinstance(getattr(module, n, None), nn.Linear) for n in ("gate_proj", "up_proj", "down_proj")):
        return ["gate_proj", "up_proj"], "down_proj"
    if isinstance(module, MLP):
        return ["fc1"], "fc2"
    return None


@contextmanager
def aligned_mlps(model: nn.Module, multiple: int = ALIGN) -> Iterator[int]:
    """Inside the block, every MLP of ``model`` whose hidden width is not a multiple of ``multiple`` runs with
    zero units added up to one (for inference: the padded weights do not train); the original layers are back
    afterwards. Yields how many MLPs were padded."""
    swapped: list[tuple[nn.Module, str, nn.Linear]] = []
    padded = 0
    try:
        for module in list(model.modules()):
            roles = _mlp_roles(module)
            if roles is None:
                continue
            into, out = roles
            width = getattr(module, into[0]).out_features
            target = -(-width // multiple) * multiple
            if target == width:
                continue
            for name in into:
                swapped.append((module, name, getattr(module, name)))
                setattr(module, name, _padded(getattr(module, name), out_features=target))
            swapped.append((module, out, getattr(module, out)))
            setattr(module, out, _padded(getattr(module, out), in_features=target))
            padded += 1
        yield padded
    finally:
        for module, name, original in reversed(swapped):
            setattr(module, name, original)
