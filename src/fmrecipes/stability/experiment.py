"""One replicate of the stability comparison (``fmrecipes stability run`` / ``reproduce stability``): sweep,
label, summarise, plot."""

from __future__ import annotations

import json
import math
from typing import Any

from ..core.dist import DistEnv
from ..core.fileio import atomic_write_text, ensure_dir
from . import plots
from .config import StabilityConfig
from .sweep import Run, aggregate, classify, run_sweep, stable_range


def summarize(cfg: StabilityConfig, results: list[dict[str, Any]]) -> tuple[dict[str, Any], dict, dict]:
    """``max_stable_lr``, ``first_diverged_lr``, ``lr_gain`` (vs qk_norm) and ``ppl`` per variant.

    A variant that diverged nowhere in the grid has a censored max stable LR, ``">= <top of the grid>"``, and no
    ``lr_gain``: a censored value is never divided as if it were a number.
    """
    agg = aggregate(results)
    labels = classify(agg, cfg.divergence)
    grid = sorted(set(cfg.lrs))
    summary: dict[str, Any] = {}
    for v in cfg.variants:
        largest, first_bad = stable_range(labels, v, grid)
        if largest is None:
            summary[f"max_stable_lr.{v}"] = "below grid"
        else:
            summary[f"max_stable_lr.{v}"] = largest if first_bad is not None else f">= {largest:g}"
        summary[f"first_diverged_lr.{v}"] = first_bad if first_bad is not None else "none in grid"
        final = agg[(v, cfg.ppl_lr)]["final"]
        summary[f"ppl.{v}"] = round(math.exp(final), 3) if math.isfinite(final) else None
    ref = summary.get("max_stable_lr.qk_norm")
    for v in cfg.variants:
        ours = summary[f"max_stable_lr.{v}"]
        numeric = isinstance(ours, float) and isinstance(ref, float)
        summary[f"lr_gain.{v}"] = round(ours / ref, 3) if numeric else None
    for (v, lr), label in sorted(labels.items()):
        summary[f"label.{v}.lr_{lr:g}"] = label
        summary[f"final_val_loss.{v}.lr_{lr:g}"] = round(agg[(v, lr)]["final"], 4)
    summary["ppl_lr"] = cfg.ppl_lr
    return summary, agg, labels


def norm_plot_pair(cfg: StabilityConfig, labels: dict) -> tuple[Run, Run] | None:
    """A diverging and a converging run at the same LR (baseline first), for the output-norm plot."""
    for lr in sorted(set(cfg.lrs)):
        bad = [v for v in cfg.variants if labels[(v, lr)] != "converged"]
        good = [v for v in cfg.variants if labels[(v, lr)] == "converged"]
        if bad and good:
            b = "baseline" if "baseline" in bad else bad[0]
            g = "qk_norm" if "qk_norm" in good else good[0]
            return Run(b, lr, cfg.seeds[0]), Run(g, lr, cfg.seeds[0])
    return None


def run_experiment(cfg: StabilityConfig, env: DistEnv) -> dict[str, Any]:
    out = ensure_dir(cfg.out)
    results = run_sweep(cfg, env)
    summary, agg, labels = summarize(cfg, results)
    summary["precision"] = "bf16" if env.bf16 else "fp32"  # what the sweep trained in
    plots.loss_vs_lr(agg, labels, cfg.variants, out / "final_loss_vs_lr.png")
    pair = norm_plot_pair(cfg, labels)
    if pair is not None:
        runs = out / "runs"
        plots.output_norms(runs / pair[0].name, runs / pair[1].name,
                           (f"{pair[0].variant} (diverged)", f"{pair[1].variant} (converged)"),
                           out / f"output_norms_lr_{pair[0].lr:g}.png")
    records = [json.dumps({**r, "label": labels[(r["variant"], r["lr"])]}) + "\n" for r in results]
    atomic_write_text(out / "metrics.jsonl", "".join(records))  # one record per run
    return summary
