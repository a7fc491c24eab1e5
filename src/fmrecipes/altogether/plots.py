"""The Altogether experiment's plots: caption metrics per system as bars, and a caption gallery."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..data.gallery import gallery
from ..data.scene_pack import ScenePack

BARS = ("cider", "object_recall", "object_precision", "hallucination", "brand_retention", "brand_mention",
        "brand_hallucination")
SYSTEMS = ("alt_text", "no_alt", "stage1", "altogether", "gold")


def metric_bars(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(BARS), figsize=(3.0 * len(BARS), 3.4))
    for ax, metric in zip(axes, BARS):
        values = [summary.get(f"{metric}.{s}") or 0.0 for s in SYSTEMS]
        ax.bar(range(len(SYSTEMS)), values, color=["tab:gray", "tab:orange", "tab:cyan", "tab:blue", "tab:green"])
        ax.set_xticks(range(len(SYSTEMS)), SYSTEMS, rotation=40, ha="right", fontsize=7)
        ax.set_title(metric + (" (x100)" if metric == "cider" else " (%)"), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def caption_gallery(test: ScenePack, captions: dict[str, list[str]], path: Path, n: int = 8) -> None:
    """Test images with their alt-text, our caption (and the scratch captioner's), and the gold."""
    n = min(n, len(test.images))
    texts = [{"alt": captions["alt_text"][i], "altogether": captions["altogether"][i],
              "no alt-text": captions["no_alt"][i], "gold": captions["gold"][i]} for i in range(n)]
    gallery([test.images[i].numpy() for i in range(n)], texts, path)
