"""Finding a variant's largest stable learning rate by search (notes §B.4 read it off a fixed grid; a grid that
steps by 2x cannot resolve the paper's 1.5x gain, and one where nothing diverged says nothing).

The search brackets, then bisects:

1. Bracket: train at ``start``; while it converges, multiply the rate by ``factor`` (up to ``max_lr``); while it
   diverges, divide (down to ``min_lr``). The first converged/diverged pair brackets the edge.
2. Bisect in log space (the geometric mean of the pair) until ``diverged / converged <= resolution``.

A variant that converges at ``max_lr`` is *censored* (its max stable LR is ">= max_lr"); one that diverges at
``min_lr`` is censored below ("< min_lr"). Neither is a number and no ratio is ever taken of it. Bisection assumes
divergence is monotone in the rate between the two bracketing points; every point it trained is recorded with
its label, so a non-monotone curve is visible in ``metrics.jsonl`` and the plot.

Divergence is decided per point as the search reaches it (:func:`label`), from that point and the points below
it, so the same results always give the same search path (a resumed search retraces it from the cache).

A slow start is not a divergence. The paper's divergence is the loss blowing up (NaN, above its start, a spike
that never recovers); a point that only ends more than ``margin`` above the best lower rate (``above_best``) may
instead have stalled on a plateau it is still leaving. Such a point is confirmed before it ends a bracket: the
search trains one higher rate, halfway (in log space) to the next rate it would try, ``rate · sqrt(factor)``
while bracketing and the geometric mean of the point and the diverged rate above it while bisecting. If that
higher rate converges, the point was a stall: it is labelled ``stalled``, counts as stable, and the search goes
on (the higher rate is then a point it would bisect to anyway). If it does not converge, the point is a
confirmed divergence (``above_best``). The confirming point is labelled by the plain rule (it is not itself
confirmed). A stall within half a bracket step below the true edge cannot be confirmed and still ends the
search there, as before this rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import ConfigError


@dataclass
class DivergenceRule:
    """When a run counts as diverged (the paper reads it off the validation-loss curve; no threshold is given).

    A run diverged if its loss went NaN/Inf, if it ends above its initial validation loss, if its training loss
    spiked and did not recover (the last logged training loss more than ``spike`` nats above the lowest one
    logged before it; None turns this off), or if its final validation loss exceeds by more than ``margin`` nats
    the best final loss of the converged runs at lower rates (a run below the best rate that ends worse is
    under-trained, not diverged, so only lower rates are the reference).
    """

    margin: float = 0.5
    above_initial: bool = True
    spike: float | None = 1.0


@dataclass
class LRSearch:
    """The bracket-and-bisect search over peak learning rates (module docstring)."""

    start: float = 3e-3
    factor: float = 3.0  # bracket step
    resolution: float = 1.15  # bisect until first diverged / max stable <= this
    max_lr: float = 30.0  # converging here is censored (">= max_lr")
    min_lr: float = 1e-5  # diverging here is censored ("< min_lr")

    def validate(self) -> None:
        if not 0 < self.min_lr <= self.start <= self.max_lr:
            raise ConfigError(f"search: need 0 < min_lr <= start <= max_lr, got min_lr={self.min_lr}, "
                              f"start={self.start}, max_lr={self.max_lr}")
        if self.factor <= 1 or self.resolution <= 1:
            raise ConfigError(f"search: factor={self.factor} and resolution={self.resolution} must be > 1")


def label(point: dict[str, Any], best_below: float | None, rule: DivergenceRule) -> str:
    """'converged', or why a point diverged: 'nan', 'above_initial', 'no_recovery', 'above_best'.

    ``point`` holds ``final`` and ``initial`` validation loss, ``non_finite`` and ``rise`` (the unrecovered
    training-loss rise); ``best_below`` is the best final loss of the converged points at lower rates.
    """
    if point["non_finite"] or not math.isfinite(point["final"]):
        return "nan"
    if rule.above_initial and point["final"] > point["initial"]:
        return "above_initial"
    if rule.spike is not None and point.get("rise", 0.0) > rule.spike:
        return "no_recovery"
    if best_below is not None and point["final"] > best_below + rule.margin:
        return "above_best"
    return "converged"


def diverged(lab: str) -> bool:
    """Whether a point's label is one of :func:`label`'s divergence reasons ('off_search' marks a point trained
    only for perplexity, which the search never labelled; 'stalled' a confirmed slow start, module docstring)."""
    return lab in ("nan", "above_initial", "no_recovery", "above_best")


def stable(lab: str) -> bool:
    """Whether the search counts a labelled point as below the edge: converged, or stalled and then confirmed
    by a converged higher rate."""
    return lab in ("converged", "stalled")


@dataclass
class SearchResult:
    """Where a variant's stability edge lies: ``max_stable`` converged, ``first_diverged`` did not (None when the
    search ran out of range on that side), and every trained point's label."""

    max_stable: float | None
    first_diverged: float | None
    labels: dict[float, str] = field(default_factory=dict)

    @property
    def censored(self) -> str | None:
        """'above' (nothing diverged up to max_lr), 'below' (diverged down to min_lr) or None."""
        if self.first_diverged is None:
            return "above"
        return "below" if self.max_stable is None else None


def _round(lr: float) -> float:
    """Rates carry 4 significant digits, so run names and cache keys are stable across platforms."""
    return float(f"{lr:.4g}")


def search(train_point: Callable[[float], dict[str, Any]], cfg: LRSearch, rule: DivergenceRule) -> SearchResult:
    """Bracket and bisect (module docstring); ``train_point(lr)`` trains (or reads) one point."""
    points: dict[float, dict[str, Any]] = {}
    labels: dict[float, str] = {}

    def plain(lr: float) -> str:
        """The point's label under the plain rule (trained once, then cached)."""
        if lr not in labels:
            points[lr] = train_point(lr)
            below = [points[x]["final"] for x in points if x < lr and labels.get(x) == "converged"]
            labels[lr] = label(points[lr], min(below) if below else None, rule)
        return labels[lr]

    def is_stable(lr: float, above: float | None) -> bool:
        """Train ``lr``; an ``above_best`` label is confirmed halfway to the next rate up (``above``, the
        diverged rate over it, when bisecting; the next bracket rate otherwise)."""
        lr = _round(lr)
        if plain(lr) == "above_best":
            nxt = _round(math.sqrt(lr * (above if above is not None else min(lr * cfg.factor, cfg.max_lr))))
            if nxt not in (lr, above) and plain(nxt) == "converged":
                labels[lr] = "stalled"
        return stable(labels[lr])

    lo: float | None = None
    hi: float | None = None
    lr = _round(cfg.start)
    if is_stable(lr, None):
        lo = lr
        while hi is None and lo < cfg.max_lr:
            lr = _round(min(lr * cfg.factor, cfg.max_lr))
            lo, hi = (lr, None) if is_stable(lr, None) else (lo, lr)
    else:
        hi = lr
        while lo is None and hi > cfg.min_lr:
            lr = _round(max(lr / cfg.factor, cfg.min_lr))
            lo, hi = (lr, hi) if is_stable(lr, None) else (None, lr)
    while lo is not None and hi is not None and hi / lo > cfg.resolution:
        mid = _round(math.sqrt(lo * hi))
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if is_stable(mid, hi) else (lo, mid)
    return SearchResult(lo, hi, labels)
