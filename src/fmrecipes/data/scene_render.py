"""Render a FashionScenes graph: tinted Fashion-MNIST items composited far-to-near on a background, with the
semantic mask, instance mask and depth map that the pixels imply.

Only elementwise numpy arithmetic is used (no BLAS, no resampling library), so a scene is bit-identical on
every machine.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from .scene_graph import BACKGROUND_DEPTH, COLOURS

ALPHA_THRESHOLD = 40  # an item pixel belongs to the object when its (resized) intensity exceeds this (of 255)
# object pixel = colour * (floor + (1 - floor) * intensity): keeps the garment's texture. At 0.8 every object's
# mean colour is still nearest its named colour (a white item stays white, not grey; yellow not olive; tested)
SHADE_FLOOR = 0.8


@lru_cache(maxsize=64)
def _bilinear_taps(src: int, dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Half-pixel-centred bilinear taps: lower index, upper index and upper weight per output coordinate."""
    pos = np.clip((np.arange(dst) + 0.5) * src / dst - 0.5, 0, src - 1)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, src - 1)
    return lo, hi, (pos - lo).astype(np.float32)


def resize(image: np.ndarray, side: int) -> np.ndarray:
    """Bilinear resize of a square greyscale uint8 image to ``side`` x ``side`` (float32, 0..255)."""
    lo, hi, w = _bilinear_taps(image.shape[0], side)
    img = image.astype(np.float32)
    rows = img[lo] * (1 - w)[:, None] + img[hi] * w[:, None]
    return rows[:, lo] * (1 - w)[None, :] + rows[:, hi] * w[None, :]


@lru_cache(maxsize=8)
def background_depth(size: int) -> np.ndarray:
    """The background's depth: a ground plane receding from the bottom row to the top row."""
    near, far = BACKGROUND_DEPTH
    column = np.linspace(far, near, size, dtype=np.float32)
    return np.repeat(column[:, None], size, axis=1)


def render(objects: list[dict[str, Any]], background: np.ndarray, items: np.ndarray) -> dict[str, Any]:
    """Composite ``objects`` (with ``bbox``) far-to-near onto ``background`` (RGB uint8).

    Returns the ``image`` (uint8 HxWx3), ``semantic`` (uint8, class + 1, 0 = background), ``instance`` (uint8,
    object id, 0 = background), ``depth`` (float32) and, per object id, its full and visible pixel counts and
    ``occludes[front][behind]``: how many pixels of ``behind`` the object ``front`` covers.
    """
    size = background.shape[0]
    image = background.copy()
    semantic = np.zeros((size, size), np.uint8)
    instance = np.zeros((size, size), np.uint8)
    depth = background_depth(size).copy()
    area: dict[int, int] = {}
    occludes: dict[int, dict[int, int]] = {}
    for obj in sorted(objects, key=lambda o: -o["depth"]):
        x0, y0, x1, y1 = obj["bbox"]
        intensity = resize(items[obj["item"]], x1 - x0)
        mask = intensity > ALPHA_THRESHOLD
        shade = SHADE_FLOOR + ((1 - SHADE_FLOOR) / 255.0) * intensity[mask]
        window = (slice(y0, y1), slice(x0, x1))
        ids = instance[window]
        covered = np.bincount(ids[mask], minlength=len(objects) + 1)
        occludes[obj["id"]] = {i: int(c) for i, c in enumerate(covered.tolist()) if i and c}
        rgb = image[window]
        for channel, value in enumerate(COLOURS[obj["colour"]]):  # per channel: 2x faster than an RGB mask
            rgb[:, :, channel][mask] = np.rint(shade * value).astype(np.uint8)
        semantic[window][mask] = obj["label"] + 1
        ids[mask] = obj["id"]
        depth[window][mask] = obj["depth"]
        area[obj["id"]] = len(shade)
    visible = np.bincount(instance.ravel(), minlength=len(objects) + 1)
    return {"image": image, "semantic": semantic, "instance": instance, "depth": depth, "area": area,
            "visible": {i: int(visible[i]) for i in area}, "occludes": occludes}
