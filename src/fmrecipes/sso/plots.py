"""The SSO experiment's plots."""

from __future__ import annotations

from pathlib import Path


def per_iteration(curves: dict[str, list[float]], ylabel: str, path: Path) -> None:
    """One line per method: the value at iteration 0 (the SFT policy) through the last iteration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, values in curves.items():
        ax.plot(range(len(values)), values, marker="o", label=name)
    ax.set_xlabel("iteration (0 = SFT)")
    ax.set_ylabel(ylabel)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
