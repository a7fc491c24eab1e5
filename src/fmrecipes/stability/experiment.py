"""One replicate of the stability comparison (``fmrecipes stability run`` / ``reproduce stability``): search
each variant's largest stable LR, summarise, plot."""

from __future__ import annotations

import json
import math
from typing import Any

import torch

from ..core.dist import DistEnv
from ..core.fileio import atomic_write_text, ensure_dir
from ..core.gpt import GPT
from ..core.timing import bf16_cost
from . import plots
from .config import StabilityConfig
from .search import diverged
from .sweep import Run, point, run_diagnostics, run_sweep


def summarize(cfg: StabilityConfig, found: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], dict, dict]:
    """``max_stable_lr``, ``first_diverged_lr``, ``lr_gain`` (vs qk_norm), ``ppl`` (at ``ppl_lr``) and
    ``best_ppl`` (at the variant's best converged searched rate, ``best_ppl_lr``) per variant, every searched
    point's label and final loss, and the claims' diagnostics (:func:`diagnostics`); also the per-(variant, lr)
    points and labels for the plots.

    A variant whose search found no divergence up to ``search.max_lr`` has a censored max stable LR,
    ``">= <max_lr>"`` (one that diverged down to ``search.min_lr``: ``"< <min_lr>"``), and no ``lr_gain``: a
    censored value is never divided as if it were a number.
    """
    agg: dict[tuple[str, float], dict[str, Any]] = {}
    labels: dict[tuple[str, float], str] = {}
    summary: dict[str, Any] = {}
    for v, f in found.items():
        by_lr: dict[float, list[dict[str, Any]]] = {}
        for r in f["results"]:
            by_lr.setdefault(r["lr"], []).append(r)
        for lr, rs in by_lr.items():
            agg[(v, lr)], labels[(v, lr)] = point(rs), rs[0]["label"]
        lo, hi = f["max_stable"], f["first_diverged"]
        if hi is None:
            summary[f"max_stable_lr.{v}"] = f">= {lo:g}"
            summary[f"first_diverged_lr.{v}"] = f"none up to {lo:g}"
        else:
            summary[f"max_stable_lr.{v}"] = lo if lo is not None else f"< {hi:g}"
            summary[f"first_diverged_lr.{v}"] = hi
        summary[f"search_points.{v}"] = len(by_lr)
        summary[f"stalled_points.{v}"] = sum(labels[(v, lr)] == "stalled" for lr in by_lr)
        final = agg[(v, cfg.ppl_lr)]["final"]
        summary[f"ppl.{v}"] = round(math.exp(final), 3) if math.isfinite(final) else None
        summary.update(diagnostics(cfg, v, lo, hi, labels))
        best = min(((agg[(v, lr)]["final"], lr) for lr in by_lr if labels[(v, lr)] == "converged"), default=None)
        summary[f"best_ppl.{v}"] = round(math.exp(best[0]), 3) if best else None  # at its own best searched rate
        summary[f"best_ppl_lr.{v}"] = best[1] if best else None
    ref = summary.get("max_stable_lr.qk_norm")
    for v in found:
        ours = summary[f"max_stable_lr.{v}"]
        numeric = isinstance(ours, float) and isinstance(ref, float)
        summary[f"lr_gain.{v}"] = round(ours / ref, 3) if numeric else None
    for (v, lr), lab in sorted(labels.items()):
        summary[f"label.{v}.lr_{lr:g}"] = lab
        summary[f"final_val_loss.{v}.lr_{lr:g}"] = round(agg[(v, lr)]["final"], 4)
    summary["ppl_lr"] = cfg.ppl_lr
    summary["search_resolution"] = cfg.search.resolution
    return summary, agg, labels


def diagnostics(cfg: StabilityConfig, v: str, lo: float | None, hi: float | None, labels: dict) -> dict[str, Any]:
    """Why a variant's claims came out as they did (first seed's runs, :func:`.sweep.run_diagnostics`): how its
    first diverged point diverged (``edge_label``) and the peak attention logit there and at its max stable rate
    (``edge_attn_logit``, ``stable_attn_logit``); how far its run at ``ppl_lr`` was still improving at the end
    (``late_val_drop``: perplexities of runs still falling compare training speed, not final quality)."""
    seed = cfg.seeds[0]
    out: dict[str, Any] = {f"edge_label.{v}": labels.get((v, hi)) if hi is not None else None,
                           f"late_val_drop.{v}": run_diagnostics(cfg, Run(v, cfg.ppl_lr, seed))["late_val_drop"]}
    for key, lr in (("edge_attn_logit", hi), ("stable_attn_logit", lo)):
        out[f"{key}.{v}"] = run_diagnostics(cfg, Run(v, lr, seed))["peak_attn_logit"] if lr is not None else None
    return out


def norm_plot_pair(cfg: StabilityConfig, labels: dict) -> tuple[Run, Run] | None:
    """A diverging and a converging run at the same LR (baseline first), for the output-norm plot."""
    for lr in sorted({lr for _, lr in labels}):
        here = {v: labels[(v, lr)] for v in cfg.variants if (v, lr) in labels}
        bad = [v for v, lab in here.items() if diverged(lab)]
        good = [v for v, lab in here.items() if lab == "converged"]
        if bad and good:
            b = "baseline" if "baseline" in bad else bad[0]
            g = "qk_norm" if "qk_norm" in good else good[0]
            return Run(b, lr, cfg.seeds[0]), Run(g, lr, cfg.seeds[0])
    return None


def run_experiment(cfg: StabilityConfig, env: DistEnv) -> dict[str, Any]:
    out = ensure_dir(cfg.out)
    found = run_sweep(cfg, env)
    summary, agg, labels = summarize(cfg, found)
    summary["precision"] = "bf16" if env.bf16 else "fp32"  # what the sweep trained in
    # what the paper's precision costs here: a baseline step's time in bf16 autocast over fp32 (CPUs without fast
    # bf16 matrix units run it slower)
    torch.manual_seed(0)
    ids = torch.randint(cfg.model.vocab_size, (cfg.train.micro_batch_size, cfg.model.seq_len + 1))
    summary["bf16_step_time_vs_fp32"] = round(bf16_cost(GPT(cfg.model).to(env.device), ids, env.device), 3)
    plots.loss_vs_lr(agg, labels, cfg.variants, out / "final_loss_vs_lr.png")
    pair = norm_plot_pair(cfg, labels)
    if pair is not None:
        runs = out / "runs"
        plots.output_norms(runs / pair[0].name, runs / pair[1].name,
                           (f"{pair[0].variant} (diverged)", f"{pair[1].variant} (converged)"),
                           out / f"output_norms_lr_{pair[0].lr:g}.png")
    records = [json.dumps(r) + "\n" for f in found.values() for r in f["results"]]
    atomic_write_text(out / "metrics.jsonl", "".join(records))  # one record per run
    return summary
