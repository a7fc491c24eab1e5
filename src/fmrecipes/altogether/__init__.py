"""Altogether (arXiv 2410.17251): a captioner that re-aligns an image's alt-text into a rich, correct caption.

A frozen image encoder's pooled embedding -> ClipCap mapper -> decoder reading [prefix] + [alt-text] ->
caption; stage 1 pre-trains on alt-text, stage 2 fine-tunes on a few re-aligned captions. Verbs:
``pretrain``, ``finetune``, ``caption``; ``reproduce`` runs the comparison and the downstream CLIP study.
"""

from .cli import register_cli
from .config import AltogetherConfig
from .experiment import reproduce, run_experiment

__all__ = ["AltogetherConfig", "register_cli", "reproduce", "run_experiment"]
