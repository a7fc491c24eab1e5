"""TIPS (arXiv 2410.16512): image-text pretraining with spatial awareness.

A dual-[CLS] ViT aligned to web alt-text (CLS1) and synthetic captions (CLS2) with the contrastive loss, plus
DINO self-distillation and iBOT masked image modelling against an EMA teacher; frozen-feature probes.
Verbs: ``train``, ``probe``; ``reproduce`` runs the paper's ablation ladder.
"""

from .cli import register_cli
from .config import VARIANTS, TIPSConfig
from .experiment import reproduce, run_experiment

__all__ = ["VARIANTS", "TIPSConfig", "register_cli", "reproduce", "run_experiment"]
