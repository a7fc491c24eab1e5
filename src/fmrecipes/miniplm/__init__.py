"""MiniPLM (arXiv 2410.17215): knowledge distillation for pre-training by difference sampling.

Stages (each a function and a CLI verb, each resumable): ``train-ref`` / ``train-teacher``, ``score``,
``select``, ``pretrain``; ``reproduce`` runs the paper's comparison.
"""

from .cli import register_cli
from .config import MiniPLMConfig
from .experiment import reproduce, run_experiment

__all__ = ["MiniPLMConfig", "reproduce", "run_experiment", "register_cli"]
