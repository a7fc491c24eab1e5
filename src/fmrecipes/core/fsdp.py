"""Fully sharded data parallel training (``train.parallel=fsdp``): FSDP2's ``fully_shard`` on every transformer
block and on the model, so each process holds 1/N of the weights, gradients and optimizer state, and a model
larger than one device's memory trains. Checkpoints stay whole (gathered to the main process), so they load,
evaluate and resume like any other; the optimizer state is stored keyed by parameter name.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

OPTIMIZER_KEY = "optimizer_by_name"  # where a sharded run's trainer state keeps its (whole) optimizer state


def blocks(model: nn.Module) -> list[nn.Module]:
    """The transformer blocks to shard one by one: our GPT's ``blocks``, a Hugging Face decoder's ``layers``."""
    if isinstance(getattr(model, "blocks", None), nn.ModuleList):
        return list(model.blocks)
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else None
    return list(getattr(decoder, "layers", []) or [])


def shard(model: nn.Module) -> nn.Module:
    """``fully_shard`` each block, then the model (its embeddings and head), in place; returns the model."""
    from torch.distributed.fsdp import fully_shard

    for block in blocks(model):
        fully_shard(block)
    fully_shard(model)
    return model


def full_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """The whole model's state on the main process's CPU, one tensor per parameter (tied ones under their first
    name); every process must call it (a collective), the others get an empty dict."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    first: dict[int, str] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        first.setdefault(id(p), name)
    tied = {name for name, p in model.named_parameters(remove_duplicate=False) if first[id(p)] != name}
    return {k: v for k, v in state.items() if k not in tied}


def full_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The whole optimizer state, keyed by parameter name, on the main process (a collective)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    return get_optimizer_state_dict(model, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def named_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """An unsharded model's optimizer state keyed by parameter name, on every process (to shard it next)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    return get_optimizer_state_dict(model, optimizer, options=StateDictOptions(full_state_dict=True))


def load_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Each process takes its shard of a whole optimizer state saved by :func:`full_optimizer_state` (an
    unsharded model takes all of it)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    set_optimizer_state_dict(model, optimizer, state, options=StateDictOptions(full_state_dict=True))


def copy_back(sharded: nn.Module, plain: nn.Module) -> None:
    """Load the trained ``sharded`` model's whole weights into ``plain`` (the caller's unsharded model) on every
    process (a collective), so what follows training (scoring, sampling, saving) sees an ordinary module."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    state = get_model_state_dict(sharded, options=StateDictOptions(full_state_dict=True))
    device = next(plain.parameters()).device
    plain.load_state_dict({k: v.to(device) for k, v in state.items()})
