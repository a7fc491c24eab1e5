"""MiniPLM (arXiv 2410.17215): knowledge distillation for pre-training by difference sampling.

Stages (each a function and a CLI verb, each resumable): ``train-ref`` / ``train-teacher``, ``score``,
``select``, ``pretrain``; ``run`` runs the paper's comparison.
"""

from ..recipe import Recipe
from .cli import register_cli
from .config import MiniPLMConfig
from .experiment import run_experiment
from .paper import CLAIMS, PAPER

RECIPE = Recipe(
    name="miniplm",
    paper="MiniPLM: Knowledge Distillation for Pre-Training Language Models (arXiv 2410.17215)",
    description="knowledge distillation for pre-training by difference sampling",
    config=MiniPLMConfig,
    run_experiment=run_experiment,
    claims=CLAIMS,
    paper_numbers=PAPER,
    register_cli=register_cli,
)

__all__ = ["RECIPE", "MiniPLMConfig", "register_cli", "run_experiment"]
