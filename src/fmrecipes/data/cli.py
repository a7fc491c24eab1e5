"""``fmrecipes data scenes export|gallery``: write FashionScenes to disk, or draw a gallery of it."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from ..cli_helpers import Parser, load_config, output_file, positive_int
from .scene_config import SceneConfig
from .scene_graph import SPLITS


@dataclass
class ScenesJob:
    """The config of the ``data scenes`` verbs: the FashionScenes distribution under ``data``, as in recipes."""

    data: SceneConfig = field(default_factory=SceneConfig)


def _export(args: argparse.Namespace) -> int:
    from .image_text import export_scenes

    job = load_config(ScenesJob, argparse.Namespace(overrides=args.overrides, config=args.config))
    out = export_scenes(job.data, args.split, args.n, args.out, progress=not args.no_progress)
    print(f"wrote {args.n} {args.split} scenes to {out} (index: {out / 'index.jsonl'})")
    return 0


def _gallery(args: argparse.Namespace) -> int:
    from .gallery import scenes_gallery

    job = load_config(ScenesJob, argparse.Namespace(overrides=args.overrides, config=args.config))
    print(f"gallery: {scenes_gallery(job.data, args.split, args.n, args.out, args.cols)}")
    return 0


def register_cli(sub) -> None:
    """Add ``data scenes export`` and ``data scenes gallery`` to the top-level parser."""
    data = sub.add_parser("data", help="generated datasets (FashionScenes)")
    data_sub = data.add_subparsers(dest="dataset", required=True, metavar="<dataset>", parser_class=Parser)
    scenes = data_sub.add_parser("scenes", help="FashionScenes: images with alt-texts, captions, masks and depth")
    verbs = scenes.add_subparsers(dest="verb", required=True, metavar="<verb>", parser_class=Parser)
    for name, helptext, func in (
            ("export", "write scenes as PNG + index.jsonl (readable as an image-text set)", _export),
            ("gallery", "a PNG grid of scenes with their alt-texts and captions", _gallery)):
        v = verbs.add_parser(name, help=helptext)
        v.add_argument("--config", help="YAML file with a `data:` section (see configs/scenes/)")
        v.add_argument("--split", choices=SPLITS, default="train" if name == "export" else "val")
        v.add_argument("overrides", nargs="*", metavar="key=value", help="overrides, e.g. data.size=32")
        v.set_defaults(func=func)
    export, gallery = verbs.choices["export"], verbs.choices["gallery"]
    export.add_argument("--n", type=positive_int, default=1000, help="number of scenes (default 1000)")
    export.add_argument("--out", required=True, help="output directory (replaced only if an earlier export)")
    export.add_argument("--no-progress", action="store_true", help="no progress bar")
    gallery.add_argument("--n", type=positive_int, default=8, help="number of scenes (default 8)")
    gallery.add_argument("--cols", type=positive_int, default=4)
    gallery.add_argument("--out", type=output_file(".png"), default="runs/scenes-gallery.png", help="PNG path")
