"""Training-stability methods of arXiv 2410.16682 (QK-norm, QKV-norm, post-norms, soft-capping) and their LR sweep.

The switches live in :mod:`fmrecipes.core.gpt`; this package runs the paper's comparison.
"""

from __future__ import annotations

from ..claims import Claim
from ..recipe import Recipe
from .config import StabilityConfig
from .experiment import run_experiment
from .variants import VARIANTS, paper_numbers

CLAIMS = (
    Claim("qk_norm_cap_lr", "QK_norm_cap raises the max stable LR of QK_norm", "1.5x: 60e-3 vs 40e-3 (§B.4)",
          "max_stable_lr.qk_norm_cap", "max_stable_lr.qk_norm", "higher", "log_ratio"),
    Claim("qkv_norm_lr", "QKV_norm raises the max stable LR of QK_norm", "1.5x: 60e-3 vs 40e-3 (§B.4)",
          "max_stable_lr.qkv_norm", "max_stable_lr.qk_norm", "higher", "log_ratio"),
    Claim("qk_norm_lr", "QK_norm raises the max stable LR of the baseline", "6.7x: 40e-3 vs 6e-3 (§B.4)",
          "max_stable_lr.qk_norm", "max_stable_lr.baseline", "higher", "log_ratio"),
    Claim("qk_norm_ppl", "QK_norm lowers perplexity against the baseline at a moderate LR",
          "10.84 vs 11.19 (Table 4)", "ppl.qk_norm", "ppl.baseline", "lower"),
)

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
