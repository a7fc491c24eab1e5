"""FashionScenes backgrounds: crops of real textures bundled in scikit-image, or a plain named colour."""

from __future__ import annotations

import random
from functools import cache

import numpy as np

from ..errors import FmError

TEXTURES: tuple[str, ...] = ("brick", "grass", "gravel")
PLAIN: dict[str, tuple[int, int, int]] = {
    "gray": (128, 128, 128), "beige": (222, 206, 168), "navy": (28, 36, 88),
    "olive": (96, 104, 40), "black": (20, 20, 20),
}
BACKGROUNDS: tuple[str, ...] = TEXTURES + tuple(PLAIN)
# Textures are dimmed to 20..160 so that light objects stand out (a photo's background is rarely the brightest).
_DIM = np.rint(20 + np.arange(256) * (140 / 255)).astype(np.uint8)
CROP = 128  # side, in texture pixels, of the window a canvas shows (so texture scale is canvas-independent)


@cache
def texture(name: str) -> np.ndarray:
    """The 512x512 greyscale scikit-image texture ``name`` (shipped inside the wheel; nothing is downloaded)."""
    try:
        import skimage.data
    except ImportError:
        raise FmError("FashionScenes backgrounds need scikit-image (pip install scikit-image)") from None
    image = np.asarray(getattr(skimage.data, name)(), dtype=np.uint8)
    if image.ndim != 2 or min(image.shape) < CROP:
        raise FmError(f"scikit-image texture {name!r} is not a greyscale image of at least {CROP}px")
    return image


def background(name: str, size: int, rng: random.Random) -> np.ndarray:
    """An RGB uint8 [size, size, 3] background: a random ``CROP``-pixel window of the texture, subsampled
    to ``size`` (nearest pixel, so exact on any machine), or the plain colour."""
    if name in PLAIN:
        return np.broadcast_to(np.asarray(PLAIN[name], np.uint8), (size, size, 3)).copy()
    if name not in TEXTURES:
        raise FmError(f"background {name!r} is unknown; choose from {', '.join(BACKGROUNDS)}")
    tex = texture(name)
    y0, x0 = (rng.randrange(s - CROP + 1) for s in tex.shape)
    if CROP % size == 0:
        step = CROP // size
        crop = tex[y0:y0 + CROP:step, x0:x0 + CROP:step]
    else:
        idx = (np.arange(size) * CROP) // size
        crop = tex[y0 + idx[:, None], x0 + idx[None, :]]
    out = np.empty((size, size, 3), np.uint8)
    out[:] = _DIM[crop][:, :, None]
    return out
