"""Image-text sample transforms in plain torch (no torchvision): random resized crop, a horizontal flip that
also swaps left/right in the texts and the scene graph, and normalisation.

A transform is ``f(sample, generator) -> sample`` over the dicts of :func:`fmrecipes.data.scenes.scene_sample`
(keys it does not know are passed through, so a real image-text set with only ``image`` works too).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from .scene_text import flip_text

DENSE_KEYS = ("semantic", "instance", "depth")  # resampled with nearest neighbour, never blended
TEXT_KEYS = ("caption", "realigned_caption")
TEXT_LIST_KEYS = ("alt_texts", "rounds")
SIDE = {"left": "right", "right": "left"}


@dataclass
class RandomResizedCrop:
    """Crop a random box (area fraction in ``scale``, aspect ratio in ``ratio``) and resize it to ``size``.

    The image is resampled bilinearly with antialiasing, masks and depth by nearest neighbour. Texts are left
    as they are: a crop can cut an object that the caption names (as with any crop of a captioned photo).
    """

    size: int
    scale: tuple[float, float] = (0.35, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)

    def box(self, height: int, width: int, generator: torch.Generator) -> tuple[int, int, int, int]:
        """(top, left, h, w): up to 10 draws, falling back to the whole image, as torchvision does."""
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            u = torch.rand(3, generator=generator).tolist()
            target = area * (self.scale[0] + u[0] * (self.scale[1] - self.scale[0]))
            aspect = math.exp(log_ratio[0] + u[1] * (log_ratio[1] - log_ratio[0]))
            w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
            if 0 < w <= width and 0 < h <= height:
                top = int(torch.randint(0, height - h + 1, (1,), generator=generator))
                left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
                return top, left, h, w
        return 0, 0, height, width

    def __call__(self, sample: dict[str, Any], generator: torch.Generator) -> dict[str, Any]:
        _, height, width = sample["image"].shape
        top, left, h, w = self.box(height, width, generator)
        out = dict(sample)
        crop = sample["image"][:, top:top + h, left:left + w].unsqueeze(0)
        out["image"] = F.interpolate(crop, size=(self.size, self.size), mode="bilinear", align_corners=False,
                                     antialias=True).squeeze(0)
        for key in DENSE_KEYS:
            if key in sample:
                dense = sample[key][top:top + h, left:left + w][None, None].float()
                resized = F.interpolate(dense, size=(self.size, self.size), mode="nearest-exact")[0, 0]
                out[key] = resized.to(sample[key].dtype)
        return out


def flip_graph(graph: dict[str, Any]) -> dict[str, Any]:
    """The scene graph of the mirrored image: positions left <-> right, boxes mirrored."""
    out = copy.deepcopy(graph)
    for obj in out["objects"]:
        obj["position"] = SIDE.get(obj["position"], obj["position"])
        if "bbox" in obj:
            x0, y0, x1, y1 = obj["bbox"]
            obj["bbox"] = [graph["size"] - x1, y0, graph["size"] - x0, y1]
    return out


@dataclass
class RandomHorizontalFlip:
    """Mirror the image (and masks, depth) with probability ``p``; the words left and right are swapped in
    every text, and the scene graph's positions with them, so captions stay true."""

    p: float = 0.5

    def __call__(self, sample: dict[str, Any], generator: torch.Generator) -> dict[str, Any]:
        if float(torch.rand((), generator=generator)) >= self.p:
            return sample
        out = dict(sample)
        out["image"] = sample["image"].flip(-1)
        for key in DENSE_KEYS:
            if key in sample:
                out[key] = sample[key].flip(-1)
        for key in TEXT_KEYS:
            if key in sample:
                out[key] = flip_text(sample[key])
        for key in TEXT_LIST_KEYS:
            if key in sample:
                out[key] = [flip_text(t) for t in sample[key]]
        if "graph" in sample:
            out["graph"] = flip_graph(sample["graph"])
        return out


@dataclass
class Normalize:
    """``(image - mean) / std`` per channel."""

    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.25, 0.25, 0.25)

    def __call__(self, sample: dict[str, Any], generator: torch.Generator) -> dict[str, Any]:
        mean = torch.tensor(self.mean).view(-1, 1, 1)
        std = torch.tensor(self.std).view(-1, 1, 1)
        return {**sample, "image": (sample["image"] - mean) / std}


@dataclass
class Compose:
    """Apply ``transforms`` in order with the same generator."""

    transforms: list

    def __call__(self, sample: dict[str, Any], generator: torch.Generator) -> dict[str, Any]:
        for transform in self.transforms:
            sample = transform(sample, generator)
        return sample
