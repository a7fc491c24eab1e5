"""Paper claims, replicates over seeds, and the verdict rule.

A :class:`Claim` is a paper statement that a recipe's comparison can test: metric ``a`` (the method's) against
metric ``b`` (what the paper compares it with), in a claimed direction. The rule, stated here once:

* Each seed is a full replicate; a claim is judged on the **paired per-seed differences**
  ``d_s = a_s - b_s`` (``scale="difference"``) or ``d_s = ln(a_s / b_s)`` (``scale="log_ratio"``), minus the
  claim's ``margin`` (a claimed size, in the same units; 0 = direction only).
* A replicate whose ``a`` or ``b`` is censored (a string such as ``">= 0.3"``), missing or not finite gives no
  difference: a censored value is never compared as if it were a number.
* With ``n`` differences, mean ``m`` and standard error ``se = std(d, ddof=1) / sqrt(n)``: the verdict is
  ``holds`` when ``m`` lies in the claimed direction by more than ``2·se`` and ``n >= 3``; ``fails`` when it
  lies the other way by more than ``2·se`` and ``n >= 3``; ``inconclusive`` otherwise (always when ``n < 3``).
* A claim may name a measurement that must be able to see its effect (``testable_if``: a ceiling that must clear
  a floor by a gap, e.g. a supervised model's probe against an untrained one's). When the replicates' mean gap
  falls short, the verdict is ``not testable`` whatever the differences say (their mean and spread are kept).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean, stdev
from typing import Any, Literal

MIN_SEEDS = 3  # fewer paired replicates never decide a claim
Z = 2.0        # standard errors the mean difference must clear

Verdict = Literal["holds", "fails", "inconclusive", "not testable"]


def is_number(value: Any) -> bool:
    """A real number (bools, strings such as censored ``">= 0.3"`` and None are not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Claim:
    """One testable paper statement: ``a`` is claimed ``direction`` ("higher" / "lower") than ``b``."""

    id: str
    statement: str
    paper: str  # the paper's figure for it, and where it is stated
    a: str
    b: str
    direction: Literal["higher", "lower"]
    scale: Literal["difference", "log_ratio"] = "difference"
    margin: float = 0.0  # claimed size in the scale's units (e.g. ln 1.2 for "within 1.2x"); 0 = direction only
    # summary keys of measured numbers that say why the claim did not hold (a probe, a ceiling, a curve), shown
    # beside any verdict other than ``holds``
    diagnostics: tuple[str, ...] = ()
    # (ceiling key, floor key, gap): testable only when the mean over replicates of ceiling - floor is >= gap
    testable_if: tuple[str, str, float] | None = None

    def metric(self) -> str:
        """How the paired difference is formed, for the summary."""
        op = f"ln({self.a} / {self.b})" if self.scale == "log_ratio" else f"{self.a} - {self.b}"
        return op if not self.margin else f"{op} - {self.margin:.4g}"

    def testable(self, replicates: Mapping[int, Mapping[str, Any]]) -> bool:
        """False when ``testable_if``'s ceiling clears its floor by less than the gap, on average over the
        replicates that have both; True otherwise (no condition, or no replicate measured it)."""
        if self.testable_if is None:
            return True
        ceiling, floor, gap = self.testable_if
        gaps = [r[ceiling] - r[floor] for r in replicates.values()
                if is_number(r.get(ceiling)) and is_number(r.get(floor))]
        return not gaps or fmean(gaps) >= gap

    def difference(self, replicate: Mapping[str, Any]) -> float | None:
        """This replicate's paired difference, or None when either side is censored, missing or not finite."""
        a, b = replicate.get(self.a), replicate.get(self.b)
        if not (is_number(a) and is_number(b) and math.isfinite(a) and math.isfinite(b)):
            return None
        if self.scale == "log_ratio":
            if a <= 0 or b <= 0:
                return None
            return math.log(a / b) - self.margin
        return a - b - self.margin


def verdict(diffs: Sequence[float], direction: Literal["higher", "lower"]) -> tuple[Verdict, float | None,
                                                                                      float | None]:
    """(verdict, mean, standard error) of paired differences under the rule in the module docstring."""
    n = len(diffs)
    if n == 0:
        return "inconclusive", None, None
    mean = fmean(diffs)
    se = stdev(diffs) / math.sqrt(n) if n >= 2 else None
    if n < MIN_SEEDS or se is None:
        return "inconclusive", mean, se
    signed = mean if direction == "higher" else -mean
    if signed > Z * se:
        return "holds", mean, se
    if signed < -Z * se:
        return "fails", mean, se
    return "inconclusive", mean, se


def judge(claims: Sequence[Claim], replicates: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """``claims.<id>.{verdict,mean,se,std,n_seeds,paper,statement,metric}`` for every claim."""
    out: dict[str, Any] = {}
    for c in claims:
        diffs = [d for d in (c.difference(r) for r in replicates.values()) if d is not None]
        v, mean, se = verdict(diffs, c.direction)
        if not c.testable(replicates):
            v = "not testable"
        std = se * math.sqrt(len(diffs)) if se is not None else None
        out.update({f"claims.{c.id}.verdict": v, f"claims.{c.id}.mean": mean, f"claims.{c.id}.se": se,
                    f"claims.{c.id}.std": std, f"claims.{c.id}.n_seeds": len(diffs),
                    f"claims.{c.id}.paper": c.paper, f"claims.{c.id}.statement": c.statement,
                    f"claims.{c.id}.metric": c.metric(), f"claims.{c.id}.direction": c.direction})
    return out


def claim_fields(summary: Mapping[str, Any], claim: Claim) -> dict[str, Any]:
    """A claim's ``claims.<id>.*`` fields in a summary (what :func:`judge` wrote), by their last part."""
    prefix = f"claims.{claim.id}."
    return {k[len(prefix):]: v for k, v in summary.items() if k.startswith(prefix)}


def aggregate(replicates: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """Replicates' metrics -> one summary: each key holds the mean over the seeds that have it, ``spread.<key>``
    its standard deviation (two or more seeds) and ``per_seed.<key>`` the values in seed order (None where a
    seed lacks the key). A key whose values are not all numbers (e.g. censored) keeps its value when the seeds
    agree, else the per-seed values joined by " / "."""
    keys = list(dict.fromkeys(k for r in replicates.values() for k in r))
    out: dict[str, Any] = {}
    spread: dict[str, Any] = {}
    per_seed: dict[str, Any] = {}
    for key in keys:
        values = [r.get(key) for r in replicates.values()]
        present = [v for v in values if v is not None]
        if present and all(is_number(v) for v in present):
            out[key] = present[0] if len(set(present)) == 1 else fmean(present)
            if len(present) >= 2:
                spread[f"spread.{key}"] = stdev(present)
        elif len(set(map(str, values))) == 1:
            out[key] = values[0]
        else:
            out[key] = " / ".join(str(v) for v in values)
        per_seed[f"per_seed.{key}"] = values
    return {**out, **spread, **per_seed}
