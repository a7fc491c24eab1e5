"""The reward-model comparison: BT reward models trained on SSO pairs, on as many off-policy annotated pairs (the
synthetic UltraFeedback), and on both, each with and without RRM augmentation; accuracy on a test set independent
of both (single-feature contrasts on held-out queries, per feature as RewardBench reports per category, and their
mean)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..core import dist
from ..core.checkpoint import load_model
from ..core.fileio import atomic_write_json, ensure_dir
from ..core.hf import context_length
from ..core.train import train
from .config import SSOConfig
from .evaluate import annotated_pairs, feature_contrasts
from .reward import Comparison, ComparisonData, RewardModel, accuracy, rm_objective, rrm_augment
from .world import Query, Task


def train_reward_model(start, tok, comparisons: list[Comparison], cfg: SSOConfig, run_dir, env) -> RewardModel:
    """A BT reward model initialised from the policy in ``start``, trained on ``comparisons``."""
    backbone = load_model(start, env.device)
    model = RewardModel(backbone).to(env.device)
    data = ComparisonData(tok, comparisons, context_length(backbone) or 2048)
    train(model, data, None, cfg.reward.train, run_dir, env, loss_fn=rm_objective)
    return model


def reward_comparison(cfg: SSOConfig, task: Task, tok, start, sso_triples: list[dict], eval_queries: list[Query],
                      out: Path, env: dist.DistEnv) -> dict[str, float]:
    """``rm_acc.<data>`` (the mean over features) and ``rm_acc_<feature>.<data>``, with and without ``_rrm``, for
    data in sso_pairs, gold_pairs, both (and pair counts). The test set's queries go to ``out/test_queries.json``
    (checked for leaks by the tests)."""
    policy = load_model(start, env.device)
    sso = [Comparison(r["instruction"], r["chosen"], r["rejected"]) for r in sso_triples][:cfg.reward_pairs]
    train_q = task.queries("train")
    order = np.random.default_rng(cfg.seed + 11).permutation(len(train_q))
    pool = [train_q[i] for i in order[:min(len(order), 2 * len(sso))]]  # ties are dropped: draw from 2x the queries
    gold = annotated_pairs(task, pool, cfg.gold_label_noise, cfg.seed)[:len(sso)]
    max_len = context_length(policy) or 2048
    tests = {f: ComparisonData(tok, comps, max_len) for f, comps in feature_contrasts(task, eval_queries,
                                                                                       cfg.seed).items()}
    if env.is_main:
        atomic_write_json(ensure_dir(out) / "test_queries.json", sorted({q.text for q in eval_queries}))
    result: dict[str, float] = {"rm_pairs.test": sum(len(t) for t in tests.values())}
    for name, comps in {"sso_pairs": sso, "gold_pairs": gold, "both": sso + gold}.items():
        result[f"rm_pairs.{name}"] = len(comps)
        if not comps:
            continue
        rm = train_reward_model(start, tok, comps, cfg, out / name, env)
        result.update(_accuracies(rm, tests, name))
        extra = rrm_augment(rm, tok, comps, cfg.reward.rrm_per_example, cfg.reward.rrm_threshold, max_len,
                            cfg.seed + 41)
        rm_rrm = train_reward_model(start, tok, comps + extra, cfg, out / f"{name}_rrm", env)
        result.update(_accuracies(rm_rrm, tests, f"{name}_rrm"))
        result[f"rm_pairs.{name}_rrm"] = len(comps) + len(extra)
    return result


def _accuracies(rm: RewardModel, tests: dict[str, ComparisonData], name: str) -> dict[str, float]:
    """Per-feature accuracy and their mean (RewardBench's average over categories)."""
    per = {f: accuracy(rm, data) for f, data in sorted(tests.items())}
    return {f"rm_acc.{name}": float(np.mean(list(per.values()))),
            **{f"rm_acc_{f.lower()}.{name}": v for f, v in per.items()}}
