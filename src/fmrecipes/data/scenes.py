"""FashionScenes: generated image-text data with web alt-text, dense and re-aligned captions, masks and depth.

Each scene is a pure function of ``(config, split, index)``: Fashion-MNIST items (real photographs), tinted,
scaled and placed on a real scikit-image texture, described by a dense caption (TIPS' synthetic caption),
several web-like alt-texts whose defects are recorded, and the re-aligned caption Altogether learns to write.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import FmError
from .fashion_mnist import load_fashion_mnist
from .scene_config import SceneConfig
from .scene_graph import SPLITS, fashion_split, item_pool, sample_layout, sample_objects
from .scene_render import render
from .scene_text import alt_text, caption_style, dense_caption, realigned_rounds
from .textures import PLAIN, background

LAYOUT_TRIES = 20
MIN_OCCLUSION = 0.05  # an occlusion is stated in the caption when it hides this fraction of an object


@dataclass
class Scene:
    """One generated scene: pixels, dense labels, the scene graph and its texts."""

    image: np.ndarray        # uint8 [H, W, 3]
    semantic: np.ndarray     # uint8 [H, W]: Fashion-MNIST class + 1, 0 = background
    instance: np.ndarray     # uint8 [H, W]: object id, 0 = background
    depth: np.ndarray        # float32 [H, W]: larger = farther
    graph: dict[str, Any]
    caption: str
    alt_texts: list[str]
    alt_text_errors: list[dict[str, Any]]
    rounds: list[str]        # Altogether annotation rounds 1-3; rounds[2] is the re-aligned caption

    @property
    def realigned_caption(self) -> str:
        return self.rounds[2]


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise FmError(f"FashionScenes split {split!r} does not exist; choose one of {', '.join(SPLITS)}")


def _rng(cfg: SceneConfig, split: str, index: int) -> random.Random:
    """The scene's random stream. Python's Mersenne Twister seeded by a string (via SHA-512) is the same on every
    platform and Python 3 version, and its scalar draws are ~5x cheaper than numpy's (generation speed is a target)."""
    return random.Random(f"fashionscenes:{cfg.seed}:{split}:{index}")


def _layout(rng: random.Random, cfg: SceneConfig, objects: list[dict[str, Any]], bg: np.ndarray,
            items: np.ndarray) -> dict[str, Any]:
    """Place and render; re-draw the layout until every object keeps ``min_visible`` of its pixels, and if
    that keeps failing drop the objects that are still hidden."""
    for _ in range(LAYOUT_TRIES):
        sample_layout(rng, objects, cfg.size, cfg.small_scale, cfg.large_scale, cfg.jitter)
        out = render(objects, bg, items)
        hidden = [o for o in objects if out["visible"][o["id"]] < cfg.min_visible * max(out["area"][o["id"]], 1)]
        if not hidden:
            return out
    kept = [o for o in objects if o not in hidden] or objects[:1]
    objects[:] = [{**o, "id": k + 1} for k, o in enumerate(kept)]
    return render(objects, bg, items)


def make_scene(cfg: SceneConfig, split: str, index: int) -> Scene:
    """The scene ``index`` of ``split``: identical for the same arguments on any machine."""
    _check_split(split)
    if index < 0:
        raise FmError(f"FashionScenes index {index} is negative")
    rng = _rng(cfg, split, index)
    images, labels = load_fashion_mnist(fashion_split(split), cfg.fashion_dir)
    pool = item_pool(split, len(labels))
    bg_name = rng.choice(cfg.backgrounds)
    bg = background(bg_name, cfg.size, rng)
    n = rng.randint(cfg.min_objects, cfg.max_objects)
    objects = sample_objects(rng, n, cfg.colours, pool, labels, fashion_split(split))
    out = _layout(rng, cfg, objects, bg, images)
    for obj in objects:
        obj["area"], obj["visible"] = out["area"][obj["id"]], out["visible"][obj["id"]]
    occlusions = [[front, behind] for front, covered in out["occludes"].items() for behind, count in covered.items()
                  if count >= MIN_OCCLUSION * out["area"][behind]]
    graph = {"seed": cfg.seed, "split": split, "index": index, "size": cfg.size,
             "background": {"name": bg_name, "kind": "plain" if bg_name in PLAIN else "texture"},
             "objects": objects, "occlusions": sorted(occlusions)}
    style = caption_style(rng, len(objects))
    alts = [alt_text(rng, graph, cfg.alt_text, cfg.colours) for _ in range(cfg.n_alt_texts)]
    records = [r for _, r in alts]
    return Scene(image=out["image"], semantic=out["semantic"], instance=out["instance"], depth=out["depth"],
                 graph=graph, caption=dense_caption(graph, style), alt_texts=[t for t, _ in alts],
                 alt_text_errors=records, rounds=realigned_rounds(graph, records, style))


def scene_sample(scene: Scene) -> dict[str, Any]:
    """A scene as a training sample: float image [3, H, W] in [0, 1], long masks, float depth, and texts."""
    return {
        "image": torch.from_numpy(scene.image).permute(2, 0, 1).float().div_(255.0),
        "semantic": torch.from_numpy(scene.semantic).long(), "instance": torch.from_numpy(scene.instance).long(),
        "depth": torch.from_numpy(scene.depth.copy()), "caption": scene.caption, "alt_texts": list(scene.alt_texts),
        "realigned_caption": scene.realigned_caption, "rounds": list(scene.rounds), "graph": scene.graph,
        "alt_text_errors": scene.alt_text_errors,
    }


Transform = Callable[[dict[str, Any], torch.Generator], dict[str, Any]]


class FashionScenes(Dataset):
    """``n`` scenes of ``split`` as a map-style dataset of :func:`scene_sample` dicts.

    ``transform(sample, generator)`` is applied with a generator seeded by (config seed, index, epoch), so
    augmentations are reproducible too; call :meth:`set_epoch` each epoch for fresh ones.
    """

    def __init__(self, cfg: SceneConfig, split: str, n: int, transform: Transform | None = None):
        cfg.validate()
        _check_split(split)
        if n < 1:
            raise FmError(f"FashionScenes needs n >= 1 scenes, got {n}")
        load_fashion_mnist(fashion_split(split), cfg.fashion_dir)  # fail early, clearly
        self.cfg, self.split, self.n, self.transform, self.epoch = cfg, split, n, transform, 0

    def __len__(self) -> int:
        return self.n

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.n:
            raise IndexError(f"FashionScenes {self.split} has {self.n} scenes; index {index} is out of range")
        sample = scene_sample(make_scene(self.cfg, self.split, index))
        if self.transform is not None:
            seed = np.random.SeedSequence([self.cfg.seed, index, self.epoch]).generate_state(1)[0]
            gen = torch.Generator().manual_seed(int(seed))
            sample = self.transform(sample, gen)
        return sample


def collate_scenes(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack tensors; keep texts, graphs and records as lists."""
    return {key: torch.stack([s[key] for s in samples]) if isinstance(samples[0][key], torch.Tensor)
            else [s[key] for s in samples] for key in samples[0]}


def iter_batches(dataset: Dataset, batch_size: int, shuffle: bool = False, seed: int = 0, drop_last: bool = False):
    """Collated batches of ``dataset`` in order (or in a seeded shuffled order)."""
    order = (torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed)).tolist()
             if shuffle else list(range(len(dataset))))
    stop = len(order) - len(order) % batch_size if drop_last else len(order)
    for start in range(0, stop, batch_size):
        yield collate_scenes([dataset[i] for i in order[start:start + batch_size]])
