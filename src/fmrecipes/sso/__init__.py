"""SSO (arXiv 2410.17131): Self-Steering Optimization.

Principle-steered on-policy preference data (y+ under good principles, y- under bad ones, y0 under none), the
SSO loss (base xPO + W-weighted self-steering terms), iterative training, and reward models trained on the
same data. Verbs: ``sft``, ``generate``, ``train``, ``reward-model``, and ``run`` (the comparison).
"""

from ..recipe import Recipe
from .cli import register_cli
from .config import SSOConfig
from .experiment import run_experiment
from .paper import CLAIMS, PAPER

RECIPE = Recipe(
    name="sso",
    paper="Self-Steering Optimization (arXiv 2410.17131)",
    description="principle-steered on-policy preference pairs, the SSO loss, iterative training, reward models",
    config=SSOConfig,
    run_experiment=run_experiment,
    claims=CLAIMS,
    paper_numbers=PAPER,
    register_cli=register_cli,
)

__all__ = ["RECIPE", "SSOConfig", "register_cli", "run_experiment"]
