"""The six recipes, and which of them are implemented in this installation."""

from __future__ import annotations

import importlib
from types import ModuleType

RECIPES: dict[str, str] = {
    "stability": "QK-norm, QKV-norm, post-norms and soft-capping, with an LR sweep (arXiv 2410.16682)",
    "miniplm": "knowledge distillation for pre-training by difference sampling (arXiv 2410.17215)",
    "sso": "Self-Steering Optimization (arXiv 2410.17131)",
    "tips": "image-text pretraining with spatial awareness (arXiv 2410.16512)",
    "altogether": "re-aligning alt-text into rich captions (arXiv 2410.17251)",
    "sim": "one-step diffusion distillation by Score Implicit Matching (arXiv 2410.16794)",
}


def recipe_module(name: str) -> ModuleType | None:
    """The recipe's package if it is implemented (has ``reproduce``), else None."""
    try:
        module = importlib.import_module(f"fmrecipes.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"fmrecipes.{name}":
            return None
        raise
    return module if hasattr(module, "reproduce") else None


def implemented() -> list[str]:
    return [name for name in RECIPES if recipe_module(name) is not None]
