"""SIM (arXiv 2410.16794): one-step diffusion distillation by Score Implicit Matching.

An EDM teacher (exact for 2-D Gaussian mixtures, trained here for images), a one-step generator initialised
from it, and an online fake score; the generator is trained with SIM's loss (pseudo-Huber or L2 distance),
SiD's or Diff-Instruct's. Verbs: ``run`` (the comparison with any config), ``sample``; ``reproduce sim``.
"""

from ..recipe import Recipe
from .cli import register_cli
from .config import DistillConfig, SimConfig
from .experiment import run_experiment
from .paper import CLAIMS, PAPER, TABLES

RECIPE = Recipe(
    name="sim",
    paper="One-Step Diffusion Distillation through Score Implicit Matching (arXiv 2410.16794)",
    description="one-step diffusion distillation by Score Implicit Matching",
    config=SimConfig,
    run_experiment=run_experiment,
    claims=CLAIMS,
    paper_numbers=PAPER,
    tables=TABLES,
    register_cli=register_cli,
)

__all__ = ["RECIPE", "DistillConfig", "SimConfig", "register_cli", "run_experiment"]
