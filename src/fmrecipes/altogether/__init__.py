"""Altogether (arXiv 2410.17251): a captioner that re-aligns an image's alt-text into a rich, correct caption.

A frozen image encoder's pooled embedding -> ClipCap mapper -> decoder reading [prefix] + [alt-text] ->
caption; stage 1 pre-trains on alt-text, stage 2 fine-tunes on a few re-aligned captions. Verbs:
``pretrain``, ``finetune``, ``caption``, and ``run`` (the comparison and the downstream CLIP study).
"""

from ..recipe import Recipe
from .cli import register_cli
from .config import AltogetherConfig
from .experiment import run_experiment
from .paper import CLAIMS, TABLES

RECIPE = Recipe(
    name="altogether",
    paper="Altogether: Image Captioning via Re-aligning Alt-text (arXiv 2410.17251)",
    description="a captioner that re-aligns an image's alt-text into a rich, correct caption",
    config=AltogetherConfig,
    run_experiment=run_experiment,
    claims=CLAIMS,
    register_cli=register_cli,
    tables=TABLES,
)

__all__ = ["RECIPE", "AltogetherConfig", "register_cli", "run_experiment"]
