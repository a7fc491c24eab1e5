"""FashionScenes scene graphs: which Fashion-MNIST items, in which colour, size, place and depth, on what.

The vocabulary here (colours, sizes, positions, brands) is the ground truth that captions describe and that
caption metrics check against.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from .fashion_mnist import CLASSES

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 40, 40), "orange": (240, 135, 30), "yellow": (235, 215, 45), "green": (45, 165, 65),
    "blue": (45, 85, 220), "purple": (135, 55, 185), "pink": (240, 125, 175), "white": (245, 245, 245),
}
SIZES: tuple[str, ...] = ("small", "large")
# Object centres as fractions of the canvas (x, y).
POSITIONS: dict[str, tuple[float, float]] = {
    "left": (0.25, 0.5), "right": (0.75, 0.5), "top": (0.5, 0.25), "bottom": (0.5, 0.75), "centre": (0.5, 0.5),
}
# A brand is true of an object but not visible in the image: only alt-text can know it.
BRANDS: tuple[str, ...] = ("Nordvik", "Alba", "Kestrel", "Marlowe", "Zephyr", "Oakridge", "Lumen", "Saffron",
                           "Brio", "Halden", "Vesper", "Corvo")
# Depth (arbitrary units, larger = farther): large objects stand nearer than small ones; background farthest.
DEPTH_RANGE = {"large": (2.0, 4.0), "small": (5.0, 7.0)}
BACKGROUND_DEPTH = (8.0, 10.0)  # bottom row .. top row (a receding ground plane)

SPLITS = ("train", "val", "test")


def item_pool(split: str, n_items: int) -> range:
    """The item indices (of its ``n_items``) that a scene split draws from: train
    scenes use the train split, val and test scenes the two halves of the test split, so no item is shared
    between scene splits."""
    if split == "train":
        return range(n_items)
    half = n_items // 2
    return range(half) if split == "val" else range(half, n_items)


def fashion_split(split: str) -> str:
    """The Fashion-MNIST split behind a scene split."""
    return "train" if split == "train" else "test"


def sample_objects(rng: random.Random, n: int, colours: list[str], items: range, labels: np.ndarray,
                   item_split: str) -> list[dict[str, Any]]:
    """``n`` objects with class (from the drawn Fashion-MNIST ``item_split`` item), colour, size, brand and
    depth; no layout yet."""
    objects = []
    for k in range(n):
        item = rng.choice(items)
        size = rng.choice(SIZES)
        lo, hi = DEPTH_RANGE[size]
        objects.append({
            "id": k + 1, "item_split": item_split, "item": item, "label": int(labels[item]), "class": CLASSES[int(labels[item])],
            "colour": rng.choice(colours), "size": size,
            "brand": rng.choice(BRANDS), "depth": round(rng.uniform(lo, hi), 3),
        })
    return objects


def sample_layout(rng: random.Random, objects: list[dict[str, Any]], canvas: int, small: float, large: float,
                  jitter: float) -> None:
    """Give each object a distinct named position and its pixel box ``[x0, y0, x1, y1)`` (in place)."""
    for obj, name in zip(objects, rng.sample(list(POSITIONS), len(objects))):
        cx, cy = POSITIONS[name]
        side = max(4, round((large if obj["size"] == "large" else small) * canvas))
        cx, cy = cx + rng.uniform(-jitter, jitter), cy + rng.uniform(-jitter, jitter)
        x0 = min(max(round(cx * canvas - side / 2), 0), canvas - side)
        y0 = min(max(round(cy * canvas - side / 2), 0), canvas - side)
        obj["position"] = name
        obj["bbox"] = [x0, y0, x0 + side, y0 + side]
