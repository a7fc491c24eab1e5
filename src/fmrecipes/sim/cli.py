"""``fmrecipes sim sample``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..cli_helpers import output_file, positive_int
from .config import SimConfig


def _sample(args: argparse.Namespace) -> int:
    import torch

    from .. import config as configlib
    from ..core.checkpoint import latest_checkpoint, load_model
    from ..errors import FmError
    from .distill import Distillation, one_step
    from .images import image_shape, num_classes
    from .plots import sample_grids
    from .teacher import teacher_network

    run = Path(args.run)
    if not (run / "config.yaml").is_file():
        raise FmError(f"{run} is not a sim replicate directory (no config.yaml); pass OUT/seed<k> of `sim run` or "
                      f"`reproduce sim` (DIR/sim/seed<k>)")
    cfg = configlib.load(SimConfig, run / "config.yaml")
    ckpt = latest_checkpoint(run / "images" / args.method)
    if ckpt is None:
        raise FmError(f"{run / 'images' / args.method} holds no distillation checkpoint; methods run: "
                      f"{', '.join(cfg.methods)}")
    ic = cfg.images
    shape = image_shape(ic.dataset, ic.resolution, ic.channels)
    classes = num_classes(ic.dataset) if ic.conditional else 0
    init = teacher_network(ic, shape, cfg.edm, classes)
    state = Distillation(init)
    load_model(ckpt, into=state)
    g = torch.Generator().manual_seed(args.seed)
    z = torch.randn(args.n, *shape, generator=g)
    labels = torch.arange(args.n) % classes if ic.conditional else None
    with torch.no_grad():
        images = one_step(state.generator_ema.eval(), z, ic.distill.sigma_init, labels)
    out = Path(args.png or run / f"samples_{args.method}.png")
    sample_grids({f"{args.method} (one step)": images}, out, f"{ic.dataset}: {ckpt.name}")
    print(out)
    return 0


def register_cli(verbs) -> None:
    """``sample`` as a verb of ``fmrecipes sim``."""
    v = verbs.add_parser("sample", help="a grid of one-step samples from a distilled image generator")
    v.add_argument("run", help="the output directory of `sim run` or `reproduce sim`")
    v.add_argument("--method", default="sim_phuber", help="which distilled generator (default sim_phuber)")
    v.add_argument("--n", type=positive_int, default=64, help="number of samples (default 64)")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--png", type=output_file(".png"), help="output PNG (default RUN/samples_<method>.png)")
    v.set_defaults(func=_sample)
