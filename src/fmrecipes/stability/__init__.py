"""Training-stability methods of arXiv 2410.16682 (QK-norm, QKV-norm, post-norms, soft-capping) and their LR sweep.

The switches live in :mod:`fmrecipes.core.gpt`; this package runs the paper's comparison.
"""

from __future__ import annotations

import argparse

from .config import StabilityConfig
from .experiment import reproduce, run_experiment
from .variants import VARIANTS

__all__ = ["StabilityConfig", "VARIANTS", "reproduce", "run_experiment", "register_cli"]


def _sweep(args: argparse.Namespace) -> int:
    import json

    from ..cli import load_config

    summary = run_experiment(load_config(StabilityConfig, args))
    keys = [k for k in summary if k.split(".")[0] in ("max_stable_lr", "lr_gain", "ppl")]
    print(json.dumps({k: summary[k] for k in keys}, indent=2))
    return 0


def register_cli(sub) -> None:
    p = sub.add_parser("stability", help="QK/QKV-norm, post-norms, soft-capping: LR sweep (arXiv 2410.16682)")
    verbs = p.add_subparsers(dest="verb", required=True, metavar="<verb>", parser_class=type(p))
    s = verbs.add_parser("sweep", help="train every variant at every learning rate; label divergence; plot")
    from ..cli import add_config_args

    add_config_args(s)
    s.set_defaults(func=_sweep)
