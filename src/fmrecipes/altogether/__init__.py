"""Altogether (arXiv 2410.17251): a captioner that re-aligns an image's alt-text into a rich, correct caption.

A frozen image encoder's pooled embedding -> ClipCap mapper -> decoder reading [prefix] + [alt-text] ->
caption; stage 1 pre-trains on alt-text, stage 2 fine-tunes on a few re-aligned captions. Verbs:
``pretrain``, ``finetune``, ``caption``, and ``run`` (the comparison and the downstream CLIP study).
"""

from ..claims import Claim
from ..recipe import Recipe
from .cli import register_cli
from .config import AltogetherConfig
from .experiment import run_experiment

NOT_RETRIEVED = "direction only: the paper's numbers were not retrieved (notes B.7)"

CLAIMS = (
    Claim("keeps_brands", "re-aligned captions keep the alt-text's brands (against the same captioner never shown "
          "alt-text)", NOT_RETRIEVED, "brand_retention.altogether", "brand_retention.no_alt", "higher"),
    Claim("fewer_hallucinations", "re-aligned captions hallucinate less than the alt-text they re-align",
          NOT_RETRIEVED, "hallucination.altogether", "hallucination.alt_text", "lower"),
    Claim("alt_text_helps", "reading the alt-text brings captions closer to the re-aligned references (CIDEr-D)",
          NOT_RETRIEVED + "; ablation with/without the alt-text prompt", "cider.altogether", "cider.no_alt",
          "higher"),
    Claim("downstream_zeroshot", "a CLIP trained on alt-text mixed with 15% Altogether captions beats one on "
          "alt-text at zero-shot classification", "stated in the abstract; MetaCLIP 1.2 syn_ratio 0.15 (notes B.6)",
          "clip_zeroshot.mix15", "clip_zeroshot.alt_text", "higher"),
)

RECIPE = Recipe(
    name="altogether",
    paper="Altogether: Image Captioning via Re-aligning Alt-text (arXiv 2410.17251)",
    description="a captioner that re-aligns an image's alt-text into a rich, correct caption",
    config=AltogetherConfig,
    run_experiment=run_experiment,
    claims=CLAIMS,
    register_cli=register_cli,
)

__all__ = ["RECIPE", "AltogetherConfig", "register_cli", "run_experiment"]
