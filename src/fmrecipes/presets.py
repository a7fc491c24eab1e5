"""Locate the preset configs ``configs/<recipe>/{smoke,quick,full}.yaml`` of the checkout."""

from __future__ import annotations

from pathlib import Path

from .errors import FmError

CONFIG_ROOT = Path(__file__).resolve().parents[2] / "configs"


def preset_path(recipe: str, preset: str) -> Path:
    path = CONFIG_ROOT / recipe / f"{preset}.yaml"
    if not path.is_file():
        raise FmError(f"preset config {path} not found; presets live in configs/{recipe}/ of the fmrecipes checkout")
    return path
