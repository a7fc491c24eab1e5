"""``fmrecipes tips train | probe``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..cli_helpers import add_verb, load_config
from .config import TIPSConfig


def _train(args: argparse.Namespace) -> int:
    from ..core import dist
    from ..core.fileio import atomic_write_json
    from .experiment import eval_set, evaluate, prepare, train_variant

    cfg = load_config(TIPSConfig, args)
    out = Path(cfg.out)
    env = dist.setup(cfg.run)
    pack, codec = prepare(cfg, out, env.progress, [cfg.variant])
    model = train_variant(cfg, cfg.variant, pack, codec, out / cfg.variant, env)
    if env.is_main:
        result = evaluate(model, codec, eval_set(cfg), cfg)
        atomic_write_json(out / cfg.variant / "probes.json", result)
        print(json.dumps({k: round(v, 3) for k, v in result.items() if k != "seg_pred"}))
    dist.teardown(env)
    return 0


def _probe(args: argparse.Namespace) -> int:
    from .. import config as configlib
    from .experiment import eval_set, evaluate, load_trained, prepare

    run = Path(args.run)
    cfg = configlib.load(TIPSConfig, run / "config.yaml") if (run / "config.yaml").is_file() else None
    if cfg is None:
        from ..errors import FmError

        raise FmError(f"{run} is not a tips run directory (no config.yaml); pass DIR/<variant> of `tips train`")
    _, codec = prepare(cfg, run.parent, False, [cfg.variant])
    result = evaluate(load_trained(run, cfg, cfg.variant), codec, eval_set(cfg), cfg)
    print(json.dumps({k: round(v, 3) for k, v in result.items() if k != "seg_pred"}))
    return 0


def register_cli(verbs) -> None:
    """``train`` and ``probe`` as verbs of ``fmrecipes tips``."""
    add_verb(verbs, "train", "train one variant (variant=tips|clip_alt|...) on FashionScenes or your train_data=, "
             "then probe it (resumes; torchrun for DDP)", _train)
    v = verbs.add_parser("probe", help="zero-shot, retrieval and dense probes of a trained variant")
    v.add_argument("run", help="OUT/<variant> directory written by `tips train` or `reproduce tips`")
    v.set_defaults(func=_probe)
