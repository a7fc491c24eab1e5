"""Figures of ``reproduce sim``: sample grids, convergence curves and 2-D scatter plots."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from ..core.metrics import read_jsonl
from .images import to_unit


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _tile(images: torch.Tensor, cols: int = 8) -> torch.Tensor:
    """[N, C, H, W] in [-1, 1] -> one [H', W'] (grey) or [H', W', C] picture with 1-pixel gaps."""
    n, c, h, w = images.shape
    rows = math.ceil(n / cols)
    canvas = torch.ones(c, rows * (h + 1) - 1, cols * (w + 1) - 1)
    for i, img in enumerate(to_unit(images)):
        r, k = divmod(i, cols)
        canvas[:, r * (h + 1):r * (h + 1) + h, k * (w + 1):k * (w + 1) + w] = img
    return canvas[0] if c == 1 else canvas.permute(1, 2, 0)


def sample_grids(grids: dict[str, torch.Tensor], path: Path, title: str) -> None:
    plt = _plt()
    cols = min(4, len(grids))
    rows = math.ceil(len(grids) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (name, images) in zip(axes.flat, grids.items()):
        ax.imshow(_tile(images), cmap="gray", vmin=0, vmax=1)
        ax.set_title(name, fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def convergence(curves: dict[str, Path], key: str, path: Path, title: str, references: dict[str, float],
                logy: bool = False) -> None:
    """``key`` against generator images seen, one line per run (the paper's convergence claim), with a dashed
    line at each reference value (label -> value: the teacher at its NFEs)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, metrics in curves.items():
        pts = [(r["images_seen"], r[key]) for r in read_jsonl(metrics) if key in r and math.isfinite(r[key])]
        if pts:
            ax.plot(*zip(*pts), label=name, marker="o", markersize=3)
    for (label, value), style in zip(references.items(), ("--", ":", "-.")):
        if math.isfinite(value):
            ax.axhline(value, color="black", linestyle=style, linewidth=1, label=label)
    ax.set_xlabel("generator images seen")
    ax.set_ylabel(key)
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def toy_scatter(samples: dict[str, torch.Tensor], means: torch.Tensor, path: Path, title: str) -> None:
    plt = _plt()
    cols = min(4, len(samples))
    rows = math.ceil(len(samples) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 3 * rows), squeeze=False)
    lim = means.abs().max().item() * 1.6
    for ax in axes.flat:
        ax.axis("off")
    for ax, (name, x) in zip(axes.flat, samples.items()):
        ax.axis("on")
        ax.scatter(x[:, 0], x[:, 1], s=1, alpha=0.4)
        ax.scatter(means[:, 0], means[:, 1], s=12, c="red", marker="x")
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(name, fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def gradient_profiles(probes: dict[str, dict], path: Path, title: str) -> None:
    """Each run's share of its update per noise level on the exact-Gaussian probe (sim.profile): left, the gradient
    norm per level; right, that norm times how often the run samples the level."""
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name, probe in probes.items():
        left.plot(probe["sigma"], probe["grad_norm"], marker="o", markersize=3, label=name)
        right.plot(probe["sigma"], probe["share"], marker="o", markersize=3, label=name)
    for ax, label in ((left, "generator gradient norm"), (right, "share of the expected update")):
        ax.set_xscale("log")
        ax.set_xlabel("noise level sigma")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    left.set_yscale("log")
    right.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
