"""Metrics: JSONL records, an optional TensorBoard mirror, and loss-curve plots."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..errors import FmError


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Records of a metrics file; a torn last line (from a kill mid-write) is skipped."""
    p = Path(path)
    if not p.is_file():
        return []
    rows = []
    for line in p.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


class MetricsWriter:
    """Append-only JSONL (one record per line) with an optional TensorBoard mirror.

    On resume from step ``s``, records logged after ``s`` (by the killed run) are dropped so the
    file describes exactly one consistent run.
    """

    def __init__(self, path: str | Path, resume_step: int | None = None, tensorboard_dir: str | Path | None = None,
                 enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled
        self.tb = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = [r for r in read_jsonl(self.path) if resume_step is not None and r.get("step", 0) <= resume_step]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise FmError("run.tensorboard=true needs the tensorboard package (pip install tensorboard)") from None
            self.tb = SummaryWriter(str(tensorboard_dir))

    def log(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self.tb is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)) and math.isfinite(value):
                    self.tb.add_scalar(key, value, record.get("step", 0))

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def plot_curves(records: list[dict[str, Any]], keys: list[str], path: str | Path, title: str = "",
                logy: bool = False) -> Path:
    """Plot ``keys`` against ``step`` from metrics records into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for key in keys:
        pts = [(r["step"], r[key]) for r in records if key in r and isinstance(r[key], (int, float))]
        if pts:
            ax.plot(*zip(*pts), label=key, marker="o" if len(pts) < 30 else None, markersize=3)
    ax.set_xlabel("step")
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
