"""The reward-model comparison: BT reward models trained on SSO pairs, on the same number of gold-judge-labelled
pairs, and on both, each with and without RRM augmentation; accuracy on held-out gold-labelled pairs."""

from __future__ import annotations

import numpy as np

from ..core import dist
from ..core.checkpoint import load_model
from ..core.hf import context_length
from ..core.train import train
from .config import SSOConfig
from .evaluate import gold_pairs
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
                      out, env: dist.DistEnv) -> dict[str, float]:
    """``rm_acc.<data>`` and ``rm_acc.<data>_rrm`` for data in sso_pairs, gold_pairs, both (and pair counts)."""
    policy = load_model(start, env.device)
    sso = [Comparison(r["instruction"], r["chosen"], r["rejected"]) for r in sso_triples][:cfg.reward_pairs]
    train_q = task.queries("train")
    order = np.random.default_rng(cfg.seed + 11).permutation(len(train_q))
    pool = [train_q[order[i % len(order)]] for i in range(3 * len(sso))]  # most sample pairs tie: draw 3x
    gold = gold_pairs(policy, tok, task, pool, cfg.generation, cfg.seed + 21)[:len(sso)]
    heldout = ComparisonData(tok, gold_pairs(policy, tok, task, eval_queries, cfg.generation, cfg.seed + 31),
                             context_length(policy) or 2048)
    result: dict[str, float] = {"rm_pairs.heldout": len(heldout)}
    for name, comps in {"sso_pairs": sso, "gold_pairs": gold, "both": sso + gold}.items():
        result[f"rm_pairs.{name}"] = len(comps)
        if not comps or not len(heldout):  # too few samples differ in gold score (a tiny preset)
            continue
        rm = train_reward_model(start, tok, comps, cfg, out / name, env)
        result[f"rm_acc.{name}"] = accuracy(rm, heldout)
        extra = rrm_augment(rm, tok, comps, cfg.reward.rrm_per_example, cfg.reward.rrm_threshold,
                            context_length(policy) or 2048, cfg.seed + 41)
        rm_rrm = train_reward_model(start, tok, comps + extra, cfg, out / f"{name}_rrm", env)
        result[f"rm_acc.{name}_rrm"] = accuracy(rm_rrm, heldout)
        result[f"rm_pairs.{name}_rrm"] = len(comps) + len(extra)
    return result
