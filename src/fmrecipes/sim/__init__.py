"""SIM (arXiv 2410.16794): one-step diffusion distillation by Score Implicit Matching.

An EDM teacher (exact for 2-D Gaussian mixtures, trained here for images), a one-step generator initialised
from it, and an online fake score; the generator is trained with SIM's loss (pseudo-Huber or L2 distance),
SiD's or Diff-Instruct's. Verbs: ``run`` (the comparison with any config), ``sample``; ``reproduce sim``.
"""

import math

from ..claims import Claim
from ..recipe import Recipe
from .cli import register_cli
from .config import TEACHER_FD_TARGET, DistillConfig, SimConfig
from .experiment import PAPER, run_experiment

CLAIMS = (
    Claim("one_step_vs_teacher", "one SIM step reaches the teacher's 35-NFE FD (within 1.2x)",
          "CIFAR-10 FID 2.06 vs 1.97 (EDM teacher, 35 NFE; notes A.5)", "fd.sim_phuber", "fd.teacher.nfe35", "lower",
          "log_ratio", margin=math.log(TEACHER_FD_TARGET)),
    Claim("sim_vs_diff_instruct", "SIM beats Diff-Instruct at one step", "CIFAR-10 FID 2.06 vs 4.53 (notes A.5)",
          "fd.sim_phuber", "fd.diff_instruct", "lower", "log_ratio"),
    Claim("sim_vs_sid_convergence", "SIM converges better than SiD (mean FD over the second half of the budget)",
          "faster, more robust convergence (convergence figure); final FID 2.06 vs 1.92", "fd_tail.sim_phuber",
          "fd_tail.sid", "lower", "log_ratio"),
    Claim("phuber_vs_l2_sigma2", "the pseudo-Huber distance converges better than L2 at the same weighting, "
          "w = sigma^2 (mean FD over the second half)", "faster, more stable convergence than L2 (notes A.2)",
          "fd_tail.sim_phuber", "fd_tail.sim_l2_wsigma2", "lower", "log_ratio"),
    Claim("phuber_vs_l2_sid", "the pseudo-Huber distance converges better than L2 at the same weighting, SiD's "
          "(mean FD over the second half)", "faster, more stable convergence than L2 (notes A.2)",
          "fd_tail.sim_phuber_wsid", "fd_tail.sim_l2", "lower", "log_ratio"),
    Claim("toy_modes_vs_sid", "SIM covers more modes of the 2-D mixture than SiD",
          "robustness claim; the paper has no 2-D number", "modes.sim_phuber", "modes.sid", "higher"),
)

RECIPE = Recipe(
    name="sim",
    paper="One-Step Diffusion Distillation through Score Implicit Matching (arXiv 2410.16794)",
    description="one-step diffusion distillation by Score Implicit Matching",
    config=SimConfig,
    run_experiment=run_experiment,
    claims=CLAIMS,
    paper_numbers=PAPER,
    register_cli=register_cli,
)

__all__ = ["RECIPE", "DistillConfig", "SimConfig", "register_cli", "run_experiment"]
