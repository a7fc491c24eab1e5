"""``fmrecipes altogether pretrain | finetune | caption``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..cli_helpers import add_verb, load_config, output_file
from ..core import dist
from .config import AltogetherConfig


def _cfg(args: argparse.Namespace) -> AltogetherConfig:
    return load_config(AltogetherConfig, args)


def _pretrain(args: argparse.Namespace) -> int:
    from .data import CaptionData
    from .experiment import new_captioner, setup, train_stage

    cfg = _cfg(args)
    s = setup(cfg, dist.setup(cfg.run))
    cfg = s.cfg  # with the pre-trained decoder, if decoder_lm is enabled
    model = new_captioner(cfg, s.emb["pretrain"].shape[1], s.codec)
    data = CaptionData(s.emb["pretrain"], s.data.pretrain.alt_texts, s.codec, "pretrain", cfg.captioner.p_blank)
    train_stage(model, data, cfg.pretrain, Path(cfg.out) / "altogether_stage1", None, cfg.seed, s.env)
    print(f"stage 1: {Path(cfg.out) / 'altogether_stage1'} (prompts truncated: {s.codec.prompts_truncated} of "
          f"{s.codec.prompts_seen})")
    return 0


def _finetune(args: argparse.Namespace) -> int:
    from ..errors import FmError
    from .data import CaptionData
    from .experiment import new_captioner, setup, train_stage

    cfg = _cfg(args)
    stage1 = Path(cfg.out) / "altogether_stage1"
    if not (stage1 / "checkpoints").is_dir():
        raise FmError(f"{stage1} has no checkpoint: run `fmrecipes altogether pretrain` with the same --out first")
    s = setup(cfg, dist.setup(cfg.run))
    cfg = s.cfg
    model = new_captioner(cfg, s.emb["finetune"].shape[1], s.codec)
    data = CaptionData(s.emb["finetune"], s.data.finetune.alt_texts, s.codec, "finetune", cfg.captioner.p_blank,
                       s.data.finetune.realigned)
    train_stage(model, data, cfg.finetune, Path(cfg.out) / "altogether", stage1, cfg.seed, s.env)
    print(f"stage 2: {Path(cfg.out) / 'altogether'}")
    return 0


def _caption(args: argparse.Namespace) -> int:
    from .. import config as configlib
    from ..core.checkpoint import latest_checkpoint, load_model
    from ..core.vit import ViT
    from ..data.image_text import ImageTextIndex
    from ..errors import FmError
    from .caption import caption
    from .data import inference_prompt
    from .encoder import embed_images
    from .experiment import caption_codec, new_captioner

    run = Path(args.run)
    if not (run / "config.yaml").is_file():
        raise FmError(f"{run} is not an altogether output directory (no config.yaml)")
    cfg = configlib.load(AltogetherConfig, run / "config.yaml", [f"out={run}"])
    ckpt = latest_checkpoint(run / args.system)
    if ckpt is None:
        raise FmError(f"{run / args.system} has no checkpoint: train it first")
    vit = load_model(cfg.encoder.path or run / "encoder" / "vit", expect=ViT).eval()
    index = ImageTextIndex(args.index, image_size=vit.cfg.image_size)
    images = [index[i]["image"] for i in range(len(index))]
    import torch

    uint8 = (torch.stack(images).permute(0, 2, 3, 1) * 255).round().to(torch.uint8)
    codec = caption_codec(cfg, None, run)
    model = new_captioner(cfg, vit.cfg.width, codec)
    load_model(ckpt, into=model)
    if args.greedy:
        cfg.sampling.greedy = True
    prompts = [inference_prompt(r["alt_texts"]) if not args.no_alt else "" for r in index.rows]
    caption(model, codec, embed_images(vit, uint8), prompts, [r["image"] for r in index.rows], cfg.sampling,
            Path(args.out))
    print(f"captions: {args.out} (prompts truncated: {codec.prompts_truncated} of {codec.prompts_seen})")
    return 0


def register_cli(verbs) -> None:
    """The stages and captioning as verbs of ``fmrecipes altogether``."""
    add_verb(verbs, "pretrain", "stage 0 encoder (if no encoder.path), the decoder's LM pre-training (if decoder_lm."
             "enabled) and stage 1 on alt-text (resumes)", _pretrain)
    add_verb(verbs, "finetune", "stage 2 on re-aligned captions, from stage 1 (resumes)", _finetune)
    v = verbs.add_parser("caption", help="caption an image-text index (FashionScenes export or a real set); resumes")
    v.add_argument("run", help="the --out directory of pretrain/finetune (or reproduce altogether)")
    v.add_argument("--index", required=True, help="index.jsonl / .parquet (image + alt_texts | alt_text) or its dir")
    v.add_argument("--out", required=True, type=output_file(".jsonl"),
                   help="captions jsonl to write (continued if it holds this index's first rows)")
    v.add_argument("--system", default="altogether", help="which trained captioner (altogether, no_alt, ...)")
    v.add_argument("--greedy", action="store_true", help="greedy decoding instead of T 0.2, top-p 0.7")
    v.add_argument("--no-alt", action="store_true", help="caption without the alt-text prompt")
    v.set_defaults(func=_caption)
