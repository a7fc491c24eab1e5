"""The registry: one line per recipe package, each of which declares ``RECIPE`` (:class:`fmrecipes.recipe.Recipe`)."""

from __future__ import annotations

import importlib

from .errors import FmError
from .recipe import Recipe

RECIPES: tuple[str, ...] = ("stability", "miniplm", "sso", "tips", "altogether", "sim")


def get(name: str) -> Recipe:
    """The spec of recipe ``name`` (imports its package)."""
    if name not in RECIPES:
        raise FmError(f"unknown recipe '{name}'; choose one of {', '.join(RECIPES)}")
    return importlib.import_module(f"fmrecipes.{name}").RECIPE


def all_recipes() -> list[Recipe]:
    return [get(name) for name in RECIPES]
