"""MiniPLM (arXiv 2410.17215): knowledge distillation for pre-training by difference sampling.

Stages (each a function and a CLI verb, each resumable): ``train-ref`` / ``train-teacher``, ``score``,
``select``, ``pretrain``; ``run`` runs the paper's comparison.
"""

from ..claims import Claim
from ..recipe import Recipe
from .cli import register_cli
from .config import MiniPLMConfig
from .experiment import PAPER, run_experiment

CLAIMS = (
    Claim("miniplm_vs_no_kd", "the MiniPLM student beats no KD at equal training tokens (first student, held-out "
          "loss)", "DCLM loss 3.28 vs 3.35, 200M student (Table 2)", "student_val_loss.miniplm",
          "student_val_loss.no_kd", "lower"),
    Claim("miniplm_vs_vanilla_kd", "the MiniPLM student beats compute-matched Vanilla KD",
          "DCLM loss 3.28 vs 3.39, 200M student (Table 2)", "student_val_loss.miniplm",
          "student_val_loss.vanilla_kd", "lower"),
    Claim("cross_family", "MiniPLM's refined data also helps a student of another family (Llama)",
          "DCLM loss 3.43 vs 3.52, Llama 212M (cross-family table)", "val_loss.miniplm.llama", "val_loss.no_kd.llama",
          "lower"),
)

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
