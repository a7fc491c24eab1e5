"""Student validation loss against training tokens, one line per method."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def val_loss_vs_tokens(curves: dict[str, list[tuple[float, float]]], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, pts in sorted(curves.items()):
        if pts:
            ax.plot(*zip(*pts), marker="o", markersize=3, label=label, linestyle="--" if "llama" in label else "-")
    ax.set_xlabel("student training tokens")
    ax.set_ylabel("validation loss (held-out split of the whole corpus)")
    ax.set_title("MiniPLM: student validation loss vs training tokens")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
