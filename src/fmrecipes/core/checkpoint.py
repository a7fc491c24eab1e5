"""Checkpoints: ``model.safetensors`` + ``config.json`` (+ ``trainer_state.pt`` for resuming), one API for every
model kind: :func:`save_model` / :func:`load_model` with one registry of architectures.

Every checkpoint directory is written atomically, so a killed save leaves only a hidden temporary
directory that :func:`latest_checkpoint` ignores. Models built on Hugging Face classes are saved
with ``save_pretrained`` and load back with ``from_pretrained``.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file
from safetensors.torch import save_model as save_file_model

from ..errors import DamagedFile, FmError, UnsafeFile, warn
from .fileio import AtomicDir
from .gpt import GPT, GPTConfig
from .vit import ViT, ViTConfig

STEP_DIR = re.compile(r"^step_(\d{8})$")


@dataclasses.dataclass(frozen=True)
class Architecture:
    """How a model class is rebuilt from ``config.json``: its config dataclass, stored under ``key``, read from
    the model's attribute ``attr``."""

    model: type[nn.Module]
    config: type
    key: str
    attr: str


# The one registry of architectures rebuilt from their checkpoint alone (Hugging Face models carry their own).
ARCHITECTURES: dict[str, Architecture] = {
    "fmrecipes.GPT": Architecture(GPT, GPTConfig, "gpt", "config"),
    "fmrecipes.core.vit.ViT": Architecture(ViT, ViTConfig, "vit", "cfg"),
}


def unwrap(model: nn.Module) -> nn.Module:
    """The bare model inside a DDP/compile wrapper."""
    while hasattr(model, "module") or hasattr(model, "_orig_mod"):
        model = getattr(model, "module", None) or getattr(model, "_orig_mod")
    return model


def _write_model(model: nn.Module, directory: Path, weights: dict[str, torch.Tensor] | None = None) -> None:
    """The weights (``weights``, gathered from a sharded model, else its own) and ``config.json`` of ``model`` into
    the existing ``directory``."""
    model = unwrap(model)
    if hasattr(model, "save_pretrained"):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # one bar per checkpoint would drown the training bar
        model.save_pretrained(str(directory), safe_serialization=True, state_dict=weights)
        return
    if weights is None:
        save_file_model(model, str(directory / "model.safetensors"))
    else:
        save_file({k: v.contiguous() for k, v in weights.items()}, str(directory / "model.safetensors"))
    # isinstance: a sharded model's class is FSDP's subclass of ours
    name = next((n for n, a in ARCHITECTURES.items() if isinstance(model, a.model)), None)
    if name is not None:
        arch = ARCHITECTURES[name]
        config = {"architecture": name, arch.key: dataclasses.asdict(getattr(model, arch.attr))}
    else:  # another module (e.g. a reward model): its weights, named; it is rebuilt in code, then loaded
        config = {"architecture": f"{type(model).__module__}.{type(model).__qualname__}"}
    (directory / "config.json").write_text(json.dumps(config, indent=2))


def save_model(model: nn.Module, directory: str | Path, tokenizer: Any = None) -> Path:
    """Write ``model`` (any kind: ours, a Hugging Face model, or a module rebuilt in code) as ``config.json`` +
    ``model.safetensors`` in ``directory``, with ``tokenizer`` (``save_pretrained``) beside it if given,
    atomically; :func:`load_model` reads it back."""
    with AtomicDir(directory) as tmp:
        _write_model(model, tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(str(tmp))
    return Path(directory)


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


def _load_weights(model: nn.Module, d: Path) -> None:
    """Every ``*.safetensors`` of ``d`` into ``model``; tied weights saved once are restored by the tie."""
    state: dict[str, torch.Tensor] = {}
    for f in sorted(d.glob("*.safetensors")):
        try:
            state.update(load_file(str(f)))
        except Exception as exc:  # safetensors raises several types for a truncated file
            raise DamagedFile(f"checkpoint {f} cannot be read: {str(exc).splitlines()[0]}") from None
    missing, unexpected = model.load_state_dict(state, strict=False)
    aliases: dict[int, set[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        aliases.setdefault(id(p), set()).add(name)
    really_missing = sorted(n for n, p in model.named_parameters(remove_duplicate=False)
                            if n in missing and not aliases[id(p)] & set(state))
    if unexpected or really_missing:
        raise FmError(f"checkpoint {d} does not match the model (missing {really_missing[:3]}, "
                      f"unexpected {sorted(unexpected)[:3]})")


def load_model(directory: str | Path, device: str | torch.device = "cpu", into: nn.Module | None = None,
               expect: type[nn.Module] | None = None) -> nn.Module:
    """Load a checkpoint written by :func:`save_model` (or any local Hugging Face causal LM) in one call.

    ``into``: load the weights into this model (one rebuilt in code, e.g. a reward model or a TIPS model);
    otherwise the architecture comes from the registry or from Hugging Face. ``expect``: the class the caller
    needs, as a one-line error naming the checkpoint's architecture when it differs.
    """
    d = check_checkpoint_dir(directory)
    config = json.loads((d / "config.json").read_text())
    if into is not None:
        _load_weights(into, d)
        return into.to(device)
    arch = ARCHITECTURES.get(config.get("architecture"))
    if arch is not None:
        model = arch.model(arch.config(**config[arch.key]))
        _load_weights(model, d)
    elif "model_type" in config:
        from .hf import load_causal_lm

        model = load_causal_lm(d)
    else:
        raise FmError(f"checkpoint {d} holds a {config.get('architecture')!r}, which is rebuilt in code: load it "
                      "into that model (load_model(..., into=model))")
    if expect is not None and not isinstance(model, expect):
        raise FmError(f"checkpoint {d} holds a {type(model).__name__}, not a {expect.__name__}")
    return model.to(device)


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


def resolve_checkpoint(path: str | Path) -> Path:
    """A run directory's latest complete checkpoint, or ``path`` itself (a checkpoint or a Hugging Face model
    directory)."""
    p = Path(path)
    if not (p / "checkpoints").is_dir():
        return p
    ckpt = latest_checkpoint(p)
    if ckpt is None:
        raise FmError(f"run directory {p} has no complete checkpoint yet")
    return ckpt


def tokenizer_of(path: str | Path) -> Path | None:
    """The tokenizer directory of the model at ``path``: beside its weights (checkpoints written with a tokenizer,
    Hugging Face model directories), else an ``lm train`` run's ``data/tokenizer``; None if it carries none."""
    for d in (resolve_checkpoint(path), Path(path) / "data" / "tokenizer"):
        if (d / "tokenizer.json").is_file() or (d / "tokenizer_config.json").is_file():
            return d
    return None


def load_lm(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, Any]:
    """A language model and its tokenizer in one call, from a run directory (its latest checkpoint), a checkpoint
    directory or a local Hugging Face model directory; a one-line error if it carries no tokenizer."""
    from .tokenizer import load_tokenizer

    tok = tokenizer_of(path)
    if tok is None:
        raise FmError(f"model {path} carries no tokenizer (no tokenizer.json beside its weights or in data/tokenizer)")
    return load_model(resolve_checkpoint(path), device), load_tokenizer(tok)


def save_checkpoint(run_dir: str | Path, step: int, model: nn.Module, optimizer: torch.optim.Optimizer | None,
                    state: dict[str, Any], keep: int = 2, tokenizer: Any = None,
                    weights: dict[str, torch.Tensor] | None = None) -> Path:
    """Atomically write ``checkpoints/step_XXXXXXXX`` (with ``tokenizer`` beside the weights if given) and prune
    all but the newest ``keep``. A sharded run passes its gathered ``weights`` and its optimizer state in
    ``state`` (``optimizer=None``)."""
    path = Path(run_dir) / "checkpoints" / f"step_{step:08d}"
    with AtomicDir(path) as tmp:
        _write_model(model, tmp, weights)
        if tokenizer is not None:
            tokenizer.save_pretrained(str(tmp))
        own = {} if optimizer is None else {"optimizer": optimizer.state_dict()}
        torch.save({"step": step, **own, **state}, tmp / "trainer_state.pt")
    for _, old in step_dirs(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return path


def load_trainer_state(checkpoint: Path) -> dict[str, Any]:
    """A checkpoint's optimizer state and step, read with ``weights_only=True``: tensors, numbers, strings and
    containers only, so a shared checkpoint cannot run code on loading. A file holding anything else is an
    :class:`UnsafeFile` error (never loaded); a truncated or corrupt one a :class:`DamagedFile`."""
    path = checkpoint / "trainer_state.pt"
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower():
            raise UnsafeFile(f"checkpoint {path} holds objects other than tensors, numbers and containers; refused "
                             "(loading it could run code). It was not written by fmrecipes") from None
        raise DamagedFile(f"checkpoint {path} cannot be read: {(str(exc).splitlines() or ['unpickling'])[0]}") from None
    except Exception as exc:  # torch raises EOFError or RuntimeError for a damaged file
        raise DamagedFile(f"checkpoint {path} cannot be read: "
                          f"{(str(exc).splitlines() or [type(exc).__name__])[0]}") from None


def restore_latest(run_dir: str | Path, restore: Callable[[Path, dict[str, Any]], None]) -> dict[str, Any] | None:
    """Resume: ``restore(checkpoint, trainer_state)`` from the newest checkpoint of ``run_dir`` that reads back;
    a damaged newer one (a file cut short by a full disk, say) is skipped with a warning, so training goes on from
    the previous good one. Returns its trainer state, or None if the run has no checkpoint; a one-line error if
    every checkpoint is damaged."""
    dirs = step_dirs(run_dir)
    for _, ckpt in reversed(dirs):
        try:
            state = load_trainer_state(ckpt)
            restore(ckpt, state)
            return state
        except DamagedFile as exc:
            warn(f"{exc}; resuming from the checkpoint before it")
    if dirs:
        raise FmError(f"every checkpoint under {Path(run_dir) / 'checkpoints'} is damaged; delete them to start over")
    return None
