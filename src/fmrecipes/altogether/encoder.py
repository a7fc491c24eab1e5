"""The frozen image encoder: a core ViT checkpoint (a tips variant's ``vit/``), or stage 0: a CLIP trained on
alt-text with the core contrastive loss. The captioner sees only its pooled, L2-normalised [CLS] embedding
(notes B.3: no patch tokens)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from ..core import dist
from ..core.checkpoint import load_model, save_model
from ..core.clip import CLIP, clip_loss_fn
from ..core.dist import DistEnv
from ..core.linear_probe import linear_probe
from ..core.text_encoder import TextCodec
from ..core.train import TrainConfig, train
from ..core.vit import ViT
from ..data.fashion_mnist import CLASSES
from ..data.image_text_pairs import ImageTextData
from ..data.scene_graph import COLOURS
from ..data.scene_pack import ScenePack, to_float
from .data import distinct_alts


def random_alt_text(pack: ScenePack):
    """``text(i, g)``: a random distinct alt-text of image i ("" if it has none)."""
    def text(i: int, g: torch.Generator) -> str:
        alts = distinct_alts(pack.alt_texts[i]) or [""]
        return alts[int(torch.randint(len(alts), (1,), generator=g))]
    return text


def train_clip(model: CLIP, images: torch.Tensor, text, codec: TextCodec, cfg: TrainConfig, scale, run_dir: Path,
               seed: int, env: DistEnv) -> CLIP:
    """Train (or resume) a CLIP on ``images`` with texts drawn by ``text(i, g)``."""
    torch.manual_seed(seed)
    train(model, ImageTextData(images, text, codec, scale), None, cfg, run_dir, env, loss_fn=clip_loss_fn)
    return model.eval()


def image_encoder(path: str, pack: ScenePack, codec: TextCodec, make_clip, cfg: TrainConfig, scale,
                  out: Path, seed: int, env: DistEnv) -> ViT:
    """``path``'s ViT, or stage 0 trained on ``pack``'s alt-texts (saved to ``out/vit``, reused if present)."""
    if path:
        return load_model(path, expect=ViT).eval()
    if (out / "vit" / "config.json").is_file():
        return load_model(out / "vit", expect=ViT).eval()
    torch.manual_seed(seed)
    clip = train_clip(make_clip(), pack.images, random_alt_text(pack), codec, cfg, scale, out, seed, env)
    if env.is_main:  # one writer under torchrun
        save_model(clip.vit, out / "vit")
    dist.barrier(env)
    return clip.vit.eval()


@torch.no_grad()
def embed_images(vit: ViT, images: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """Pooled, L2-normalised CLS1 embeddings of uint8 images [N, H, W, 3] (resized to the encoder, no crop)."""
    size = vit.cfg.image_size
    out = []
    for i in range(0, len(images), batch):
        x = to_float(images[i:i + batch])
        if x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out.append(F.normalize(vit(x).cls[:, 0], dim=-1))
    return torch.cat(out)


def main_object(graph: dict) -> dict:
    """The scene's object with the most visible pixels."""
    return max(graph["objects"], key=lambda o: o["visible"])


def encoder_probes(train_emb: torch.Tensor, train_graphs: list[dict], test_emb: torch.Tensor,
                   test_graphs: list[dict], name: str = "") -> dict[str, float]:
    """What the captioner can read from the frozen embedding: linear probes (percent correct on the test scenes)
    for the class and the colour of each scene's main object, beside the majority class: ``encoder_probe.<attr>``
    and ``encoder_probe.<attr>_majority`` (``.<name>`` appended for a compared encoder). A decoder cannot check an
    object against an image whose embedding does not tell it (the bound on hallucination)."""
    out: dict[str, float] = {}
    tail = f".{name}" if name else ""
    for attr, names in (("class", list(CLASSES)), ("colour", list(COLOURS))):
        def labels(graphs: list[dict]) -> torch.Tensor:
            return torch.tensor([names.index(main_object(g)[attr]) for g in graphs])

        r = linear_probe(train_emb, labels(train_graphs), test_emb, labels(test_graphs), len(names))
        out[f"encoder_probe.{attr}{tail}"] = round(100 * r["accuracy"], 2)
        out[f"encoder_probe.{attr}_majority{tail}"] = round(100 * r["majority"], 2)
    return out
