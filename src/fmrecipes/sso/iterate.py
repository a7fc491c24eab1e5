"""Online iterative training (SSO v1, notes Sec. 3.1): each iteration samples on-policy triples with the
current policy, freezes the reference as the policy at the iteration start, and trains one epoch.

The ``gold`` baseline (the paper's UltraFeedback-trained policy) runs the same iterations, on the same queries,
with the base loss on off-policy annotated pairs (:func:`.evaluate.annotated_pairs`: responses drawn once, not by
the policy, labelled by a noisy annotator that is not the evaluation's judge) instead of principle-steered
triples. Each iteration of a method whose task has a judge also records how often the judge agrees with its
synthetic preferences (``label_agreement.json``).

With ``loss.variant = "v2"`` an iteration instead trains a data generator (initialised from the policy) with
L+ + L-, samples (y+, y-) from the generator under x+ / x-, and trains the policy with plain DPO on (x, y+, y-).

Every piece is cached under the iteration's directory (triples, training checkpoints, the final policy saved
atomically), so a killed run resumes where it stopped and gives the same result.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch.nn as nn

from ..core import dist
from ..core.checkpoint import load_model, save_model
from ..core.fileio import atomic_write_json
from ..core.hf import context_length
from ..core.train import train
from ..errors import ConfigError, FmError
from .config import SSOConfig
from .data import TripleData, triple_objective
from .evaluate import annotated_pairs, label_agreement
from .generate import generate_triples
from .losses import PAIRS, SEQUENCES, LossConfig, generator_loss, sso_loss
from .world import Query, Task


def iteration_queries(queries: list[Query], per_iteration: int, iteration: int, seed: int) -> list[Query]:
    """Iteration ``k``'s slice of one fixed shuffle of the training queries: every iteration has its own queries,
    as in the paper (a pool too small for them is an error, never a silent reuse)."""
    end = iteration * per_iteration
    if end > len(queries):
        raise ConfigError(f"queries_per_iteration={per_iteration}: iteration {iteration} needs {end} distinct "
                          f"training queries but the task has {len(queries)}; lower queries_per_iteration or "
                          "iterations, or give more prompts")
    order = np.random.default_rng(seed).permutation(len(queries))
    return [queries[i] for i in order[end - per_iteration:end]]


def gold_records(task: Task, queries: list[Query], cfg: SSOConfig, path: Path) -> list[dict]:
    """The gold baseline's data for one iteration: the annotated pairs of its queries
    (:func:`.evaluate.annotated_pairs`, drawn once per replicate seed) as records with the fields the main pair
    (x, y+, y-) reads; cached in ``path``."""
    if path.is_file():
        return json.loads(path.read_text())
    if not hasattr(task, "respond"):
        raise ConfigError("method 'gold' needs a task that can write and judge responses (task=assistant_world)")
    records = [{"instruction": c.query, "system": "", "chosen": c.first, "rejected": c.second}
               for c in annotated_pairs(task, queries, cfg.gold_label_noise, cfg.seed)]
    atomic_write_json(path, records)
    return records


def save_policy(model: nn.Module, tok, directory: Path, env: dist.DistEnv | None = None) -> Path:
    """Save the policy and its tokenizer; under torchrun the main process writes and the others wait for it (two
    writers renaming their copies onto one directory would race)."""
    env = env or dist.single_process()
    if env.is_main:
        save_model(model, directory, tokenizer=tok)
    dist.barrier(env)
    return Path(directory)


def preference_train(model: nn.Module, tok, records: list[dict], loss: Callable, loss_cfg: LossConfig,
                     sequences: tuple[str, ...], cfg: SSOConfig, run_dir: Path, env: dist.DistEnv) -> None:
    """``cfg.epochs`` epochs of ``loss`` over ``records``; the reference is ``model`` as it is on entry."""
    if not records:
        raise FmError(f"{run_dir}: every generated triple was degenerate (y+, y-, y0 not distinct); "
                      "raise generation.temperature or max_new_tokens")
    max_len = context_length(model) or 2048
    data = TripleData(tok, records, sequences, max_len, model, cfg.train.micro_batch_size)
    steps = max(1, math.ceil(cfg.epochs * len(data) / cfg.train.batch_size))
    tcfg = dataclasses.replace(cfg.train, steps=steps, sampling="epochs", warmup_steps=round(cfg.warmup_ratio * steps),
                               eval_every=steps + 1, ckpt_every=min(cfg.train.ckpt_every, steps))
    train(model, data, None, tcfg, run_dir, env, loss_fn=triple_objective(loss, loss_cfg, sequences))


def run_iterations(cfg: SSOConfig, method: str, task: Task, tok, start: Path, out_dir: Path,
                   env: dist.DistEnv) -> list[Path]:
    """Train ``cfg.iterations`` iterations of ``method`` from the policy in ``start`` in ``env``; returns each
    iteration's policy directory."""
    loss_cfg = cfg.method_loss(method)
    queries = task.queries("train")
    iteration_queries(queries, cfg.queries_per_iteration, cfg.iterations, cfg.seed)  # fail before any work
    previous, done = start, []
    for k in range(1, cfg.iterations + 1):
        it_dir = out_dir / f"iter{k}"
        final = it_dir / "policy"
        if not (final / "config.json").is_file():
            policy = load_model(previous, env.device)
            qs = iteration_queries(queries, cfg.queries_per_iteration, k, cfg.seed)
            if method == "gold":
                triples = gold_records(task, qs, cfg, it_dir / "data" / "gold_pairs.json")
            else:
                triples = generate_triples(policy, tok, task, qs, cfg.generation, it_dir / "data", cfg.seed + k,
                                           env.progress)
            if task.judge(qs[0], "") is not None and env.is_main:
                atomic_write_json(it_dir / "label_agreement.json", label_agreement(task, qs, triples))
            if loss_cfg.variant == "v2" and method == "sso":
                steer = SEQUENCES[2:]
                generator = load_model(previous, env.device)
                preference_train(generator, tok, triples, generator_loss, loss_cfg, steer, cfg,
                                 it_dir / "generator", env)
                triples = generate_triples(generator, tok, task, qs, cfg.generation, it_dir / "generator_data",
                                           cfg.seed + 1000 + k, env.progress)
                loss_cfg_k = cfg.method_loss("dpo")
                preference_train(policy, tok, triples, sso_loss, loss_cfg_k, PAIRS[""], cfg, it_dir / "train", env)
            else:
                preference_train(policy, tok, triples, sso_loss, loss_cfg, loss_cfg.sequences(), cfg,
                                 it_dir / "train", env)
            save_policy(policy, tok, final, env)
        previous = final
        done.append(final)
    return done
