"""One replicate of ``fmrecipes sso run`` / ``reproduce sso``: SSO and SSO-DPO vs modified PBAA and PBAA-DPO vs
the annotated off-policy baseline (the paper's UltraFeedback + IPO) from one SFT policy, iterations each on their
own queries, judged by the synthetic world's gold judge on held-out queries (facts no training query asks about)
without principles, with how often the judge agrees with each iteration's training labels; then Bradley-Terry
reward models trained on SSO pairs vs annotated pairs, each with and without RRM augmentation, tested on
single-feature contrasts of held-out queries. Every stage is cached in the output directory, so a killed run
resumes.

The gold score of a response is the mean of its applicable features (:class:`.world.AssistantWorld`). Its
Accuracy term asks for the sum of two numbers or a made-up capital the policy never saw (held-out facts), which
a policy of this size rarely gets right whatever its training (``gold_feature.<method>.Accuracy``); the score's
differences between methods come from the other features.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..core import dist
from ..core.checkpoint import load_model
from ..core.fileio import atomic_write_json, ensure_dir
from ..errors import ConfigError
from .config import SSOConfig
from .evaluate import gold_report, respond, win_rate
from .generate import generate_triples
from .iterate import iteration_queries, run_iterations
from .plots import per_iteration
from .reward_stage import reward_comparison
from .sft import load_policy, sft_policy
from .world import AssistantWorld


def _evaluate(cache: Path, policy_dir: Path, world: AssistantWorld, queries, cfg: SSOConfig,
              env: dist.DistEnv) -> dict[str, Any]:
    """Responses of one policy on the eval queries and their gold report (cached as JSON)."""
    if cache.is_file():
        return json.loads(cache.read_text())
    model, tok = load_policy(policy_dir, env.device)
    texts = respond(model, tok, queries, cfg.generation, cfg.seed + 7)
    result = {"texts": texts, "report": gold_report(world, queries, texts, tok)}
    atomic_write_json(cache, result)
    return result


def run_experiment(cfg: SSOConfig, env: dist.DistEnv) -> dict[str, Any]:
    """One replicate: SFT policy, every method's iterations, evaluation, the reward models and the per-iteration
    plots, under ``cfg.seed`` (which also draws the world's train/eval split)."""
    out = ensure_dir(cfg.out)
    world = AssistantWorld(seed=cfg.seed)
    held = world.queries("eval")
    if cfg.eval_queries > len(held):
        raise ConfigError(f"eval_queries={cfg.eval_queries}: the world holds out only {len(held)} distinct queries")
    queries = held[:cfg.eval_queries]
    if env.is_main:  # what the evaluation asked, for leak checks
        atomic_write_json(ensure_dir(out / "eval") / "queries.json", [q.text for q in queries])
    iteration_queries(world.queries("train"), cfg.queries_per_iteration, cfg.iterations, cfg.seed)  # fail early
    start = sft_policy(cfg, world, out / "sft", env)
    _, tok = load_policy(start)
    result: dict[str, float] = {}
    curves: dict[str, list[float]] = {}
    sft_eval = _evaluate(out / "eval" / "sft.json", start, world, queries, cfg, env)
    result["gold.sft.iter0"] = sft_eval["report"]["score"]
    result["length.sft"] = sft_eval["report"]["length"]
    for method in cfg.methods:
        dirs = run_iterations(cfg, method, world, tok, start, out / method, env)
        curves[method] = [sft_eval["report"]["score"]]
        curves[f"{method} length"] = [sft_eval["report"]["length"]]
        for k, d in enumerate(dirs, 1):
            agreement = d.parent / "label_agreement.json"
            if agreement.is_file():  # how often the gold judge agrees with this iteration's training labels
                labels = json.loads(agreement.read_text())
                result[f"label_acc.{method}.iter{k}"] = labels["agree"]
                result[f"label_ties.{method}.iter{k}"] = labels["ties"]
                result[f"label_acc.{method}.final"] = labels["agree"]
            ev = _evaluate(out / "eval" / f"{method}_iter{k}.json", d, world, queries, cfg, env)
            result[f"gold.{method}.iter{k}"] = ev["report"]["score"]
            curves[method].append(ev["report"]["score"])
            curves[f"{method} length"].append(ev["report"]["length"])
        result.update({f"gold_feature.{method}.{key[len('feature.'):]}": value
                       for key, value in ev["report"].items() if key.startswith("feature.")})
        result[f"gold.{method}.final"] = ev["report"]["score"]
        result[f"winrate.{method}"] = win_rate(world, queries, ev["texts"], sft_eval["texts"])
        result[f"length.{method}"] = ev["report"]["length"]
    result.update({f"gold_feature.sft.{key[len('feature.'):]}": value
                   for key, value in sft_eval["report"].items() if key.startswith("feature.")})
    sso_pairs = generate_triples(load_model(start, env.device), tok, world,
                                 iteration_queries(world.queries("train"), cfg.queries_per_iteration, 1, cfg.seed),
                                 cfg.generation, out / "sso" / "iter1" / "data", cfg.seed + 1, env.progress)
    result.update(reward_comparison(cfg, world, tok, start, sso_pairs, queries, out / "reward", env))
    result["triples_kept.sso_pairs"] = len(sso_pairs)
    per_iteration({m: c for m, c in curves.items() if not m.endswith("length")},
                  "gold score (held-out, no principle)", out / "gold_per_iteration.png")
    per_iteration({m[:-len(" length")]: c for m, c in curves.items() if m.endswith("length")},
                  "response length (tokens)", out / "length_per_iteration.png")
    return result
