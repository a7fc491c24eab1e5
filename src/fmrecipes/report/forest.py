"""One picture of every claim: a forest plot of paired differences in units of their standard error.

Each claim is a row. Its x value is the mean paired difference signed so that the claimed direction is positive,
divided by a standard error: the committed full-preset run's (``results/``) where there is one, else the run's
own; the bar spans ±2 of those standard errors, the verdict threshold (:mod:`fmrecipes.claims`). A run with one
seed (no standard error of its own) is drawn on the committed run's scale, or not at all. Colour is the
verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..claims import Claim, Z, claim_fields

VERDICT_COLOUR = {"holds": "#1a7f37", "fails": "#b42318", "inconclusive": "#8a6d00", "not testable": "#6e7781"}


@dataclass(frozen=True)
class Point:
    """One claim's standardised difference: ``z`` (claimed direction positive) with its verdict."""

    label: str
    z: float
    verdict: str


def _signed(summary: dict[str, Any], claim: Claim) -> tuple[float | None, float | None, str]:
    """(mean signed by the claimed direction, standard error, verdict) of a claim in a summary."""
    c = claim_fields(summary, claim)
    mean, se = c.get("mean"), c.get("se")
    sign = 1.0 if claim.direction == "higher" else -1.0
    good = isinstance(se, (int, float)) and math.isfinite(se) and se > 0
    return (None if mean is None else sign * mean), (se if good else None), str(c.get("verdict", "inconclusive"))


def points(label: str, claim: Claim, run: dict[str, Any] | None,
           committed: dict[str, Any] | None) -> tuple[Point | None, Point | None]:
    """(this run's point, the committed run's point) for one claim; None where it cannot be placed."""
    r_mean, r_se, r_verdict = _signed(run or {}, claim)
    c_mean, c_se, c_verdict = _signed(committed or {}, claim)
    scale = c_se or r_se
    here = Point(label, r_mean / scale, r_verdict) if run and r_mean is not None and scale else None
    ref = Point(label, c_mean / c_se, c_verdict) if committed and c_mean is not None and c_se else None
    return here, ref


def forest_plot(rows: list[tuple[Point | None, Point | None]], path: Path, title: str) -> Path | None:
    """Draw the rows (this run hollow, committed full results filled) to ``path``; None when nothing to draw."""
    rows = [r for r in rows if r[0] is not None or r[1] is not None]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [(r[0] or r[1]).label for r in rows]
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(rows) + 1.4))
    ax.axvspan(-Z, Z, color="#eeeeee", zorder=0)
    ax.axvline(0, color="#888", lw=0.8)
    ax.set_xscale("symlog", linthresh=Z)  # linear within the verdict band, logarithmic beyond
    ax.set_xticks([-100, -10, -Z, 0, Z, 10, 100], ["-100", "-10", f"-{Z:g}", "0", f"{Z:g}", "10", "100"])
    for y, (here, ref) in enumerate(rows):
        if ref is not None:
            ax.errorbar(ref.z, y, xerr=Z, fmt="o", color=VERDICT_COLOUR.get(ref.verdict, "#222"), ms=6, capsize=2)
        if here is not None:
            colour = VERDICT_COLOUR.get(here.verdict, "#222")
            ax.plot(here.z, y + 0.25, marker="D", mfc="white", mec=colour, ms=5, ls="")
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("paired difference / standard error (claimed direction → right; grey: within 2 SE)")
    ax.set_title(title, fontsize=9)
    handles = [plt.Line2D([], [], marker="o", ls="", color=c, label=v) for v, c in VERDICT_COLOUR.items()]
    if any(here is not None for here, _ in rows):
        handles.append(plt.Line2D([], [], marker="D", ls="", mfc="white", mec="#222", label="this run"))
    ax.legend(handles=handles, fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
