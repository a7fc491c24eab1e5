"""The learning-rate sweep of arXiv 2410.16682: train every variant at every rate, then label divergence.

Runs are independent: they go to a process pool (``workers``), each writes ``result.json`` atomically when it
ends, and a re-run skips finished runs and resumes unfinished ones from their checkpoints.
"""

from __future__ import annotations

import dataclasses
import json
import math
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from statistics import mean
from typing import Any

import torch
from tqdm.auto import tqdm

from ..core import dist
from ..core.fileio import atomic_write_json
from ..core.gpt import GPT
from ..core.metrics import read_jsonl
from ..core.monitor import OutputNormMonitor
from ..core.train import evaluate, train
from ..data.prepared import packed, prepare
from ..data.tokens import TokenShard
from ..errors import TrainingDiverged
from .config import DivergenceRule, StabilityConfig
from .variants import VARIANTS


@dataclasses.dataclass(frozen=True)
class Run:
    variant: str
    lr: float
    seed: int

    @property
    def name(self) -> str:
        return f"{self.variant}/lr_{self.lr:g}/seed_{self.seed}"


def runs_of(cfg: StabilityConfig) -> list[Run]:
    """Every (variant, lr, seed) of the grid, plus the perplexity rate if it is off the grid."""
    lrs = sorted(set(cfg.lrs) | {cfg.ppl_lr})
    return [Run(v, lr, s) for v in cfg.variants for lr in lrs for s in cfg.seeds]


def train_run(cfg: StabilityConfig, run: Run, data_dir: str, env: dist.DistEnv) -> dict[str, Any]:
    """Train one run (resuming if it was interrupted) in ``env`` (no progress bar) and write its ``result.json``."""
    torch.set_num_threads(cfg.threads_per_worker)
    run_dir = Path(cfg.out) / "runs" / run.name
    done = run_dir / "result.json"
    if done.is_file():
        return json.loads(done.read_text())
    model_cfg = dataclasses.replace(cfg.model, **VARIANTS[run.variant])
    train_cfg = dataclasses.replace(cfg.train, lr=run.lr, seed=run.seed)
    train_ds, val_ds = packed(TokenShard(Path(data_dir) / "train"), TokenShard(Path(data_dir) / "val"),
                              model_cfg.seq_len, cfg.data.sources)
    torch.manual_seed(run.seed)
    model = GPT(model_cfg).to(env.device)
    initial = evaluate(model, val_ds, train_cfg, env)
    try:
        result = train(model, train_ds, val_ds, train_cfg, run_dir, env, tokens_per_example=model_cfg.seq_len,
                       hooks=OutputNormMonitor(cfg.monitor_every))
        final, non_finite = result.val_loss, False
    except TrainingDiverged:
        final, non_finite = float("nan"), True
    losses = [r["loss"] for r in read_jsonl(run_dir / "metrics.jsonl") if "loss" in r]
    out = {**dataclasses.asdict(run), "initial_val_loss": initial, "final_val_loss": final,
           "non_finite": non_finite, "steps": train_cfg.steps, "unrecovered_rise": unrecovered_rise(losses)}
    atomic_write_json(done, out)
    return out


def run_sweep(cfg: StabilityConfig, env: dist.DistEnv) -> list[dict[str, Any]]:
    """Prepare the data once, then train every run in ``workers`` processes; returns all results."""
    out = Path(cfg.out)
    data_dir = out / "data"
    prepare(cfg.data, cfg.model.vocab_size, data_dir)
    todo = runs_of(cfg)
    results = []
    bar = tqdm(total=len(todo), desc="stability sweep", unit="run", disable=not env.progress)
    quiet = dataclasses.replace(env, progress=False)  # one bar for the sweep, none per run
    if cfg.workers == 1:
        for run in todo:
            results.append(train_run(cfg, run, str(data_dir), quiet))
            bar.update(1)
    else:
        with ProcessPoolExecutor(cfg.workers, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(train_run, cfg, run, str(data_dir), quiet) for run in todo]
            for fut in as_completed(futures):
                results.append(fut.result())
                bar.update(1)
    bar.close()
    return sorted(results, key=lambda r: (r["variant"], r["lr"], r["seed"]))


def unrecovered_rise(losses: list[float]) -> float:
    """How far the last logged training loss sits above the lowest one before it (nats; 0 when it ends at its
    best): a spike that recovered within the run leaves nothing, one that did not is measured."""
    if len(losses) < 2:
        return 0.0
    return max(0.0, losses[-1] - min(losses[:-1]))


def aggregate(results: list[dict[str, Any]]) -> dict[tuple[str, float], dict[str, Any]]:
    """Per (variant, lr) over seeds: mean final/initial loss; non-finite if any seed went NaN/Inf; the largest
    unrecovered training-loss rise of any seed."""
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["variant"], r["lr"]), []).append(r)
    out = {}
    for key, rs in groups.items():
        bad = any(r["non_finite"] or not math.isfinite(r["final_val_loss"]) for r in rs)
        out[key] = {"final": float("nan") if bad else mean(r["final_val_loss"] for r in rs),
                    "initial": mean(r["initial_val_loss"] for r in rs), "non_finite": bad,
                    "rise": max(r.get("unrecovered_rise", 0.0) for r in rs)}
    return out


def classify(agg: dict[tuple[str, float], dict[str, Any]], rule: DivergenceRule) -> dict[tuple[str, float], str]:
    """Label each (variant, lr) 'converged' or why it diverged: 'nan', 'above_initial', 'no_recovery',
    'above_best' (the rule: :class:`DivergenceRule`).

    'above_best' applies only above the variant's best learning rate: a run below it that ends worse is
    under-trained, not diverged.
    """
    best: dict[str, tuple[float, float]] = {}  # variant -> (best final loss, its lr)
    for (v, lr), a in agg.items():
        if not a["non_finite"] and a["final"] < best.get(v, (math.inf, 0.0))[0]:
            best[v] = (a["final"], lr)
    labels = {}
    for (v, lr), a in agg.items():
        if a["non_finite"]:
            labels[(v, lr)] = "nan"
        elif rule.above_initial and a["final"] > a["initial"]:
            labels[(v, lr)] = "above_initial"
        elif rule.spike is not None and a.get("rise", 0.0) > rule.spike:
            labels[(v, lr)] = "no_recovery"
        elif lr > best[v][1] and a["final"] > best[v][0] + rule.margin:
            labels[(v, lr)] = "above_best"
        else:
            labels[(v, lr)] = "converged"
    return labels


def stable_range(labels: dict[tuple[str, float], str], variant: str, lrs: list[float]) -> tuple[float | None, float | None]:
    """(largest LR that converged below the first diverging one, first diverging LR), scanning the grid upward."""
    largest = None
    for lr in sorted(lrs):
        if labels[(variant, lr)] != "converged":
            return largest, lr
        largest = lr
    return largest, None
