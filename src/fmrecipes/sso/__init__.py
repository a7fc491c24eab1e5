"""SSO (arXiv 2410.17131): Self-Steering Optimization.

Principle-steered on-policy preference data (y+ under good principles, y- under bad ones, y0 under none), the
SSO loss (base xPO + W-weighted self-steering terms), iterative training, and reward models trained on the
same data. Verbs: ``sft``, ``generate``, ``train``, ``reward-model``, and ``run`` (the comparison).
"""

from ..claims import Claim
from ..recipe import Recipe
from .cli import register_cli
from .config import SSOConfig
from .experiment import PAPER, run_experiment

CLAIMS = (
    Claim("sso_vs_pbaa", "SSO beats modified PBAA after the last iteration (gold score, held-out queries)",
          "AlpacaEval 2 LC 15.0 vs 2.6, Llama3.1-8B-SFT, iter 3 (v1 table)", "gold.sso.final", "gold.pbaa.final",
          "higher"),
    Claim("sso_vs_dpo", "SSO beats PBAA with a DPO base after the last iteration",
          "AlpacaEval 2 LC 36.2 vs 32.9, Qwen2-7B-Instruct (v1 table)", "gold.sso.final", "gold.dpo.final", "higher"),
    Claim("sso_vs_sft", "SSO improves on the SFT policy it starts from",
          "AlpacaEval 2 LC 15.0 vs 6.4, Llama3.1-8B-SFT (v1 table)", "gold.sso.final", "gold.sft.iter0", "higher"),
    Claim("sso_vs_gold", "SSO beats the same loss trained on pairs the gold judge labelled (human-labelled data)",
          "AlpacaEval 2 LC 15.0 vs 10.5 (UltraFeedback + IPO), Llama3.1-8B-SFT, iter 3 (v1 table)",
          "gold.sso.final", "gold.gold.final", "higher"),
    Claim("rm_sso_vs_gold", "a reward model trained on SSO pairs beats one trained on as many human-labelled pairs",
          "RewardBench 80.0 vs 79.5 (UltraFeedback), Llama3-8B-Instruct RM", "rm_acc.sso_pairs",
          "rm_acc.gold_pairs", "higher"),
)

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
