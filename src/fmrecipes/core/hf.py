"""Any local Hugging Face causal LM as teacher / reference / policy / student (no hub access)."""

from __future__ import annotations

from pathlib import Path

import torch.nn as nn

from ..errors import FmError


def load_causal_lm(path: str | Path, dtype=None) -> nn.Module:
    """``AutoModelForCausalLM.from_pretrained`` on a local directory, offline."""
    from transformers import AutoModelForCausalLM

    p = Path(path)
    if not (p / "config.json").is_file():
        raise FmError(f"Hugging Face model directory {p} does not exist or has no config.json")
    try:
        return AutoModelForCausalLM.from_pretrained(str(p), local_files_only=True, dtype=dtype)
    except (OSError, ValueError, KeyError) as exc:
        raise FmError(f"cannot load a causal LM from {p}: {str(exc).splitlines()[0]}") from None


def context_length(model: nn.Module) -> int | None:
    """The model's maximum sequence length, if it declares one."""
    cfg = getattr(model, "config", None)
    for name in ("seq_len", "max_position_embeddings", "n_positions"):
        value = getattr(cfg, name, None)
        if isinstance(value, int):
            return value
    return None
