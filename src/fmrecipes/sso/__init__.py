"""SSO (arXiv 2410.17131): Self-Steering Optimization.

Principle-steered on-policy preference data (y+ under good principles, y- under bad ones, y0 under none), the
SSO loss (base xPO + W-weighted self-steering terms), iterative training, and reward models trained on the
same data. Verbs: ``sft``, ``generate``, ``train``, ``reward-model``; ``reproduce`` runs the paper's comparison.
"""

from .cli import register_cli
from .config import SSOConfig
from .experiment import reproduce, run_experiment

__all__ = ["SSOConfig", "reproduce", "run_experiment", "register_cli"]
