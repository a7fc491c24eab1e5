"""TIPS (arXiv 2410.16512): image-text pretraining with spatial awareness.

A dual-[CLS] ViT aligned to web alt-text (CLS1) and synthetic captions (CLS2) with the contrastive loss, plus
DINO self-distillation and iBOT masked image modelling against an EMA teacher; frozen-feature probes.
Verbs: ``train``, ``probe``, and ``run`` (the paper's ablation ladder).
"""

from ..claims import Claim
from ..recipe import Recipe
from .cli import register_cli
from .config import VARIANTS, TIPSConfig
from .experiment import PAPER, run_experiment

CLAIMS = (
    Claim("tips_vs_clip_retrieval", "TIPS beats CLIP on alt-text at text-to-image retrieval (held-out "
          "human-style queries)",
          "Flickr T->I R@1 77.3 vs 62.9, ViT-B (Table 1)", "t2i_r1.tips", "t2i_r1.clip_alt", "higher"),
    Claim("dual_cls_retrieval", "synthetic captions on a second [CLS] raise text-to-image retrieval over CLIP on "
          "alt-text (held-out human-style queries)", "Flickr T->I R@1 77.1 vs 62.9 (Table 1, A -> B)",
          "t2i_r1.dual_cls", "t2i_r1.clip_alt", "higher"),
    Claim("ssl_segmentation", "self-distillation + masked image modelling raise segmentation mIoU over CLIP on "
          "alt-text", "PASCAL mIoU 75.9 vs 64.4 (Table 1, A -> C2)", "seg_miou.clip_alt_distill_mim",
          "seg_miou.clip_alt", "higher"),
    Claim("mim_depth", "masked image modelling lowers depth RMSE over self-distillation alone",
          "NYU RMSE 0.511 vs 0.589 (Table 1, C1 -> C2)", "depth_rmse.clip_alt_distill_mim",
          "depth_rmse.clip_alt_distill", "lower"),
)

RECIPE = Recipe(
    name="tips",
    paper="TIPS: Text-Image Pretraining with Spatial awareness (arXiv 2410.16512)",
    description="image-text pretraining with spatial awareness: dual-CLS ViT, contrastive + DINO + iBOT",
    config=TIPSConfig,
    run_experiment=run_experiment,
    claims=CLAIMS,
    paper_numbers=PAPER,
    register_cli=register_cli,
)

__all__ = ["RECIPE", "VARIANTS", "TIPSConfig", "register_cli", "run_experiment"]
