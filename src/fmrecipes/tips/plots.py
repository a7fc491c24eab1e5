"""The TIPS experiment's plots: the ablation as bars, and segmentation-probe predictions beside the truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..data.fashion_mnist import CLASSES
from ..data.scene_pack import ScenePack

METRICS = (("zeroshot_acc", "zero-shot acc. (%)"), ("i2t_r1", "image->text R@1 (%)"),
           ("t2i_r1", "text->image R@1 (%)"), ("seg_miou", "segmentation mIoU (%)"),
           ("depth_rmse", "depth RMSE (lower is better)"))


def ablation_bars(results: dict[str, dict[str, Any]], paper: dict[str, float], path: Path) -> None:
    """One panel per metric: ours per variant as bars (none where a variant lacks the metric: the supervised
    ceiling has only the dense probes), the paper's ViT-B value as a dot where it has one (a different dataset and
    scale: compare the ordering, not the level)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = list(results)
    fig, axes = plt.subplots(1, len(METRICS), figsize=(3.2 * len(METRICS), 3.6))
    x = np.arange(len(variants))
    for ax, (metric, label) in zip(axes, METRICS):
        ax.bar(x, [results[v].get(metric, np.nan) for v in variants], color="tab:blue", label="ours")
        ref = [(i, paper[f"paper.{metric}.{v}"]) for i, v in enumerate(variants) if f"paper.{metric}.{v}" in paper]
        if ref:
            twin = ax.twinx()
            twin.plot(*zip(*ref), "o", color="tab:red", label="paper (right axis)")
            twin.tick_params(axis="y", colors="tab:red", labelsize=7)
        ax.set_title(label, fontsize=9)
        ax.set_xticks(x, variants, rotation=40, ha="right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def segmentation_grid(test: ScenePack, predictions: dict[str, list], path: Path) -> None:
    """Rows: test scenes; columns: image, ground-truth mask, each variant's probe prediction."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    cmap = ListedColormap(["black", *plt.get_cmap("tab10").colors[: len(CLASSES)]])
    rows = min(len(next(iter(predictions.values()))), len(test.images))
    cols = 2 + len(predictions)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.6 * rows + 0.3), squeeze=False)
    for r in range(rows):
        panels = [("image", test.images[r].numpy(), None), ("truth", test.semantic[r].numpy(), cmap)]
        panels += [(v, np.asarray(p[r]), cmap) for v, p in predictions.items()]
        for ax, (title, img, cm) in zip(axes[r], panels):
            ax.imshow(img, cmap=cm, vmin=0 if cm else None, vmax=len(CLASSES) if cm else None,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
