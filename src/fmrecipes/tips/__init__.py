"""TIPS (arXiv 2410.16512): image-text pretraining with spatial awareness.

A dual-[CLS] ViT aligned to web alt-text (CLS1) and synthetic captions (CLS2) with the contrastive loss, plus
DINO self-distillation and iBOT masked image modelling against an EMA teacher; frozen-feature probes.
Verbs: ``train``, ``probe``, and ``run`` (the paper's ablation ladder).
"""

from ..recipe import Recipe
from .cli import register_cli
from .config import VARIANTS, TIPSConfig
from .experiment import run_experiment
from .paper import CLAIMS, PAPER, TABLES

RECIPE = Recipe(
    name="tips",
    paper="TIPS: Text-Image Pretraining with Spatial awareness (arXiv 2410.16512)",
    description="image-text pretraining with spatial awareness: dual-CLS ViT, contrastive + DINO + iBOT",
    config=TIPSConfig,
    run_experiment=run_experiment,
    claims=CLAIMS,
    paper_numbers=PAPER,
    register_cli=register_cli,
    tables=TABLES,
)

__all__ = ["RECIPE", "VARIANTS", "TIPSConfig", "register_cli", "run_experiment"]
