"""The learning-rate sweep of arXiv 2410.16682: search each variant's largest stable rate (:mod:`.search`).

Variants are independent searches: they go to a process pool (``workers``). Each run writes ``result.json``
atomically when it ends, and a re-run reads finished runs (retracing the same search path) and resumes
unfinished ones from their checkpoints.
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
from .config import StabilityConfig
from .search import search
from .variants import VARIANTS


@dataclasses.dataclass(frozen=True)
class Run:
    variant: str
    lr: float
    seed: int

    @property
    def name(self) -> str:
        return f"{self.variant}/lr_{self.lr:g}/seed_{self.seed}"


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


def point(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One learning rate over its seeds: mean final/initial validation loss; non-finite if any seed went NaN/Inf;
    the largest unrecovered training-loss rise of any seed."""
    bad = any(r["non_finite"] or not math.isfinite(r["final_val_loss"]) for r in results)
    return {"final": float("nan") if bad else mean(r["final_val_loss"] for r in results),
            "initial": mean(r["initial_val_loss"] for r in results), "non_finite": bad,
            "rise": max(r.get("unrecovered_rise", 0.0) for r in results)}


def search_variant(cfg: StabilityConfig, variant: str, data_dir: str, env: dist.DistEnv) -> dict[str, Any]:
    """One variant's LR search (:mod:`.search`) plus its run at ``ppl_lr``; every point trains every seed.

    Returns ``{"variant", "max_stable", "first_diverged", "results": [...]}``, each result labelled."""
    trained: dict[float, list[dict[str, Any]]] = {}

    def train_point(lr: float) -> dict[str, Any]:
        trained[lr] = [train_run(cfg, Run(variant, lr, s), data_dir, env) for s in cfg.seeds]
        return point(trained[lr])

    found = search(train_point, cfg.search, cfg.divergence)
    if cfg.ppl_lr not in trained:
        train_point(cfg.ppl_lr)
    results = [{**r, "label": found.labels.get(lr, "off_search")} for lr in sorted(trained) for r in trained[lr]]
    return {"variant": variant, "max_stable": found.max_stable, "first_diverged": found.first_diverged,
            "results": results}


def run_sweep(cfg: StabilityConfig, env: dist.DistEnv) -> dict[str, dict[str, Any]]:
    """Prepare the data once, then search every variant (one variant per worker process; under torchrun one after
    the other, each training point spread over the processes, since a worker process holds no process group);
    per-variant results."""
    out = Path(cfg.out)
    data_dir = out / "data"
    prepare(cfg.data, cfg.model.vocab_size, data_dir, env=env)
    found: dict[str, dict[str, Any]] = {}
    bar = tqdm(total=len(cfg.variants), desc="stability LR search", unit="variant",
               disable=not (env.progress and env.is_main))
    quiet = dataclasses.replace(env, run=dataclasses.replace(env.run, progress=False))  # one bar for the sweep
    if cfg.workers == 1 or env.distributed:
        for v in cfg.variants:
            found[v] = search_variant(cfg, v, str(data_dir), quiet)
            bar.update(1)
    else:
        with ProcessPoolExecutor(cfg.workers, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(search_variant, cfg, v, str(data_dir), quiet) for v in cfg.variants]
            for fut in as_completed(futures):
                r = fut.result()
                found[r["variant"]] = r
                bar.update(1)
    bar.close()
    return {v: found[v] for v in cfg.variants}


def run_diagnostics(cfg: StabilityConfig, run: Run) -> dict[str, float | None]:
    """What a finished run's ``metrics.jsonl`` says about how it ended (None where it logged nothing):
    ``peak_attn_logit``, the largest max attention logit the monitor saw (the paper's divergence signature,
    notes §B.6), and ``late_val_drop``, the validation loss of the last evaluation but one minus the final one
    (nats; > 0 means the run was still improving when it stopped)."""
    path = Path(cfg.out) / "runs" / run.name / "metrics.jsonl"
    records = read_jsonl(path) if path.is_file() else []
    logits = [r["max_attn_logit.max"] for r in records if "max_attn_logit.max" in r]
    vals = [r["val_loss"] for r in records if "val_loss" in r]
    return {"peak_attn_logit": max(logits) if logits else None,
            "late_val_drop": vals[-2] - vals[-1] if len(vals) >= 2 else None}


def unrecovered_rise(losses: list[float]) -> float:
    """How far the last logged training loss sits above the lowest one before it (nats; 0 when it ends at its
    best): a spike that recovered within the run leaves nothing, one that did not is measured."""
    if len(losses) < 2:
        return 0.0
    return max(0.0, losses[-1] - min(losses[:-1]))
