"""Plots of the stability sweep: final loss vs learning rate, and output norms of diverging vs converging runs."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..core.metrics import read_jsonl  # noqa: E402
from .search import diverged  # noqa: E402


def loss_vs_lr(agg: dict, labels: dict, variants: list[str], path: Path) -> Path:
    """Final validation loss against learning rate (log x) at every searched point of each variant; diverged
    points marked x, stalled ones (a slow start, :mod:`.search`) a hollow square, NaN at the top."""
    finite = [a["final"] for a in agg.values() if math.isfinite(a["final"])]
    top = max(finite) + 0.2 if finite else 1.0
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for v in variants:
        pts = sorted((lr, a["final"]) for (vv, lr), a in agg.items() if vv == v)
        xs = [lr for lr, _ in pts]
        ys = [y if math.isfinite(y) else top for _, y in pts]
        (line,) = ax.plot(xs, ys, marker="o", label=v)
        bad = [(lr, y) for lr, y in zip(xs, ys) if diverged(labels[(v, lr)])]
        if bad:
            ax.scatter(*zip(*bad), marker="x", s=90, color=line.get_color(), zorder=3)
        slow = [(lr, y) for lr, y in zip(xs, ys) if labels[(v, lr)] == "stalled"]
        if slow:
            ax.scatter(*zip(*slow), marker="s", s=90, facecolors="none", edgecolors=line.get_color(), zorder=3)
    ax.set_xscale("log")
    ax.set_xlabel("peak learning rate")
    ax.set_ylabel("final validation loss (nats)")
    ax.set_title("LR search, every trained point: x = diverged, square = stalled (top edge = NaN/Inf)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def output_norms(diverging: Path, converging: Path, labels: tuple[str, str], path: Path) -> Path:
    """Max-over-layers output RMS of QKV, Proj, FC2 and the max attention logit over training, for two runs."""
    keys = ["out_rms.qkv.max", "out_rms.proj.max", "out_rms.fc2.max", "max_attn_logit.max"]
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.5))
    for run_dir, label, style in ((diverging, labels[0], "-"), (converging, labels[1], "--")):
        rows = read_jsonl(run_dir / "metrics.jsonl")
        for ax, key in zip(axes, keys):
            pts = [(r["step"], r[key]) for r in rows if key in r]
            if pts:
                ax.plot(*zip(*pts), style, label=label)
    for ax, key in zip(axes, keys):
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
