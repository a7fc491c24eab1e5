"""SIM (arXiv 2410.16794): one-step diffusion distillation by Score Implicit Matching.

An EDM teacher (exact for 2-D Gaussian mixtures, trained here for images), a one-step generator initialised
from it, and an online fake score; the generator is trained with SIM's loss (pseudo-Huber or L2 distance),
SiD's or Diff-Instruct's. Verbs: ``run`` (the experiment with any config), ``sample``; ``reproduce sim``.
"""

from .cli import register_cli
from .config import DistillConfig, SimConfig
from .experiment import reproduce, run_experiment

__all__ = ["DistillConfig", "SimConfig", "register_cli", "reproduce", "run_experiment"]
