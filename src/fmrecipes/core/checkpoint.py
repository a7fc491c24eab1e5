"""Checkpoints: ``model.safetensors`` + ``config.json`` (+ ``trainer_state.pt`` for resuming).

Every checkpoint directory is written atomically, so a killed save leaves only a hidden temporary
directory that :func:`latest_checkpoint` ignores. Models built on Hugging Face classes are saved
with ``save_pretrained`` and load back with ``from_pretrained``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from safetensors.torch import load_model, save_model

from ..errors import FmError
from .fileio import AtomicDir
from .gpt import GPT, GPTConfig

GPT_ARCH = "fmrecipes.GPT"
STEP_DIR = re.compile(r"^step_(\d{8})$")


def unwrap(model: nn.Module) -> nn.Module:
    """The bare model inside a DDP/compile wrapper."""
    while hasattr(model, "module") or hasattr(model, "_orig_mod"):
        model = getattr(model, "module", None) or getattr(model, "_orig_mod")
    return model


def save_lm(model: nn.Module, directory: str | Path) -> None:
    """Write the weights and config of an LM into an existing directory."""
    model = unwrap(model)
    directory = Path(directory)
    if hasattr(model, "save_pretrained"):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # one bar per checkpoint would drown the training bar
        model.save_pretrained(str(directory), safe_serialization=True)
        return
    save_model(model, str(directory / "model.safetensors"))
    if isinstance(getattr(model, "config", None), GPTConfig):
        config = {"architecture": GPT_ARCH, "gpt": dataclasses.asdict(model.config)}
    else:  # another module (e.g. a reward model): its weights, named; it is rebuilt in code, then loaded
        config = {"architecture": f"{type(model).__module__}.{type(model).__qualname__}"}
    (directory / "config.json").write_text(json.dumps(config, indent=2))


def check_checkpoint_dir(directory: str | Path) -> Path:
    """A one-line error unless ``directory`` holds a complete model checkpoint."""
    d = Path(directory)
    if not d.exists():
        raise FmError(f"checkpoint directory {d} does not exist")
    if not d.is_dir():
        raise FmError(f"checkpoint path {d} is a file, not a directory")
    missing = [n for n in ("config.json", "model.safetensors") if not (d / n).is_file()]
    if missing:
        raise FmError(f"checkpoint directory {d} is incomplete or half-written (missing {', '.join(missing)})")
    try:
        json.loads((d / "config.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise FmError(f"checkpoint directory {d} has a corrupt config.json") from None
    return d


def load_lm(directory: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """Load an LM checkpoint (ours or any local Hugging Face causal LM) in one call."""
    d = check_checkpoint_dir(directory)
    config = json.loads((d / "config.json").read_text())
    if config.get("architecture") == GPT_ARCH:
        model = GPT(GPTConfig(**config["gpt"]))
        try:
            load_model(model, str(d / "model.safetensors"), device=str(device))
        except Exception as exc:  # safetensors raises several types for a truncated file
            raise FmError(f"checkpoint {d / 'model.safetensors'} cannot be read: {str(exc).splitlines()[0]}") from None
        return model.to(device)
    from .hf import load_causal_lm

    return load_causal_lm(d).to(device)


def step_dirs(run_dir: str | Path) -> list[tuple[int, Path]]:
    """Complete ``checkpoints/step_*`` directories of a run, oldest first."""
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        m = STEP_DIR.match(p.name)
        if m and (p / "trainer_state.pt").is_file() and (p / "config.json").is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    dirs = step_dirs(run_dir)
    return dirs[-1][1] if dirs else None


def save_checkpoint(run_dir: str | Path, step: int, model: nn.Module, optimizer: torch.optim.Optimizer,
                    state: dict[str, Any], keep: int = 2) -> Path:
    """Atomically write ``checkpoints/step_XXXXXXXX`` and prune all but the newest ``keep``."""
    path = Path(run_dir) / "checkpoints" / f"step_{step:08d}"
    with AtomicDir(path) as tmp:
        save_lm(model, tmp)
        torch.save({"step": step, "optimizer": optimizer.state_dict(), **state}, tmp / "trainer_state.pt")
    for _, old in step_dirs(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return path


def load_trainer_state(checkpoint: Path) -> dict[str, Any]:
    return torch.load(checkpoint / "trainer_state.pt", map_location="cpu", weights_only=False)
