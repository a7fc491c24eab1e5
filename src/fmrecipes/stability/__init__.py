"""Training-stability methods of arXiv 2410.16682 (QK-norm, QKV-norm, post-norms, soft-capping) and their LR sweep.

The switches live in :mod:`fmrecipes.core.gpt`; this package runs the paper's comparison.
"""

from __future__ import annotations

from ..recipe import Recipe
from .config import StabilityConfig
from .experiment import run_experiment
from .paper import CLAIMS, paper_numbers
from .variants import VARIANTS

RECIPE = Recipe(
    name="stability",
    paper="Methods of improving LLM training stability (arXiv 2410.16682)",
    description="QK-norm, QKV-norm, post-norms and soft-capping, with an LR sweep",
    config=StabilityConfig,
    run_experiment=run_experiment,
    claims=CLAIMS,
    paper_numbers=paper_numbers(),
)

__all__ = ["RECIPE", "StabilityConfig", "VARIANTS", "run_experiment"]
