"""A PNG grid of images with their texts underneath (FashionScenes gallery, caption galleries in reports)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from ..core.fileio import ensure_dir
from .scene_config import SceneConfig

IMAGE_IN = 2.6     # inches per image side
LINE_IN = 0.105    # inches per text line at FONT_PT
FONT_PT = 6.2
PAD_IN = 0.12


def _printable(text: str) -> str:
    """Printable ASCII only (a model's sampled bytes may not be), so every glyph is in the font."""
    return "".join(c if " " <= c <= "~" else "?" for c in text)


def gallery(images: list[np.ndarray], texts: list[dict[str, str]], path: str | Path, cols: int = 4,
            width: int = 44) -> Path:
    """Write ``images`` (uint8 HxWx3) in a grid, each with its ``texts`` ({label: text}) wrapped below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    ensure_dir(path.parent)
    blocks = ["\n".join(textwrap.fill(f"{label}: {_printable(text) or '(empty)'}", width) for label, text in t.items())
              for t in texts]
    cols = min(cols, len(images))
    rows = -(-len(images) // cols)
    text_in = LINE_IN * max(b.count("\n") + 1 for b in blocks) + PAD_IN
    cell_w, cell_h = IMAGE_IN + 2 * PAD_IN, IMAGE_IN + text_in + PAD_IN
    fig = plt.figure(figsize=(cell_w * cols, cell_h * rows))
    W, H = cell_w * cols, cell_h * rows
    for k, (image, block) in enumerate(zip(images, blocks)):
        r, c = divmod(k, cols)
        left, top = c * cell_w + PAD_IN, H - r * cell_h - PAD_IN
        ax = fig.add_axes((left / W, (top - IMAGE_IN) / H, IMAGE_IN / W, IMAGE_IN / H))
        ax.imshow(image, interpolation="nearest")
        ax.axis("off")
        fig.text(left / W, (top - IMAGE_IN - PAD_IN / 2) / H, block, va="top", ha="left", fontsize=FONT_PT,
                 family="monospace")
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def scenes_gallery(cfg: SceneConfig, split: str, n: int, out: str | Path, cols: int = 4) -> Path:
    """A gallery of the first ``n`` scenes of ``split``: alt-texts, dense caption and re-aligned caption."""
    from .scenes import make_scene

    scenes = [make_scene(cfg, split, i) for i in range(n)]
    texts = [{"alt": " ; ".join(repr(a) for a in s.alt_texts), "caption": s.caption,
              "re-aligned": s.realigned_caption} for s in scenes]
    return gallery([s.image for s in scenes], texts, out, cols=cols)
