"""``fmrecipes sso sft | generate | train | reward-model``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..cli_helpers import add_verb, load_config, positive_int
from ..core import dist
from ..core.fileio import iter_jsonl
from ..core.hf import context_length
from ..errors import ConfigError
from .config import METHODS, SSOConfig
from .iterate import iteration_queries, run_iterations
from .principles import load_principles
from .reward import Comparison, ComparisonData, accuracy, rrm_augment
from .reward_stage import train_reward_model
from .sft import load_policy, sft_policy
from .world import AssistantWorld, PromptsTask, Task


def _cfg(args: argparse.Namespace) -> SSOConfig:
    return load_config(SSOConfig, args)


def make_task(cfg: SSOConfig) -> Task:
    """The configured task; ``principles`` (a YAML file) replaces its principle texts."""
    if cfg.task == "prompts":
        if not cfg.principles:
            raise ConfigError("task=prompts needs principles=FILE (see configs/sso/principles.yaml)")
        return PromptsTask(cfg.prompts, load_principles(cfg.principles))
    world = AssistantWorld(seed=cfg.seed)
    if cfg.principles:
        loaded = load_principles(cfg.principles)
        if set(loaded) != set(world.features):
            raise ConfigError(f"{cfg.principles}: the assistant world's judge checks features "
                              f"{sorted(world.features)}, got {sorted(loaded)}")
        world.features = loaded
    return world


def _policy_dir(cfg: SSOConfig, given: str | None, env: dist.DistEnv) -> Path:
    """``--policy``, else ``policy_path``, else the world's SFT policy (trained if missing)."""
    path = given or cfg.policy_path
    if path:
        return Path(path)
    if cfg.task != "assistant_world":
        raise ConfigError("task=prompts needs a chat policy: pass --policy DIR (or policy_path=DIR)")
    return sft_policy(cfg, AssistantWorld(seed=cfg.seed), Path(cfg.out) / "sft", env)


def _sft(args: argparse.Namespace) -> int:
    cfg = _cfg(args)
    if cfg.task != "assistant_world":
        raise ConfigError("sso sft trains the start policy of task=assistant_world only")
    print(sft_policy(cfg, AssistantWorld(seed=cfg.seed), Path(cfg.out) / "sft", dist.setup(cfg.run)))
    return 0


def _generate(args: argparse.Namespace) -> int:
    from .generate import generate_triples

    cfg = _cfg(args)
    task = make_task(cfg)
    env = dist.setup(cfg.run)
    policy, tok = load_policy(_policy_dir(cfg, args.policy, env), env.device)
    queries = iteration_queries(task.queries("train"), cfg.queries_per_iteration, args.iteration, cfg.seed)
    out = Path(cfg.out) / "generate" / f"iter{args.iteration}"
    kept = generate_triples(policy, tok, task, queries, cfg.generation, out, cfg.seed + args.iteration,
                            env.progress)
    print(f"{len(kept)} triples kept of {len(queries)} -> {out / 'triples.jsonl'} and {out / 'pairs.jsonl'}")
    return 0


def _train(args: argparse.Namespace) -> int:
    cfg = _cfg(args)
    task = make_task(cfg)
    env = dist.setup(cfg.run)
    start = _policy_dir(cfg, args.policy, env)
    _, tok = load_policy(start)
    dirs = run_iterations(cfg, args.method, task, tok, start, Path(cfg.out) / args.method, env)
    print(dirs[-1])
    return 0


def read_comparisons(path: str | Path) -> list[Comparison]:
    """SSO ``triples.jsonl`` (its main pair: x, y+ > y-) or preference jsonl in TRL's standard or conversational
    format (``prompt``, ``chosen``, ``rejected``)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"preference file {p} does not exist")

    def text(value, n: int, key: str) -> str:
        if isinstance(value, list) and value and isinstance(value[-1], dict):
            value = value[-1].get("content")
        if not isinstance(value, str):
            raise ConfigError(f"preference file {p} line {n}: {key!r} must be a string or a list of chat messages")
        return value

    out = []
    for n, rec in iter_jsonl(p, p.read_text(), "preference file"):
        if "instruction" in rec and "raw" in rec:
            if not rec.get("degenerate"):
                out.append(Comparison(rec["instruction"], rec["chosen"], rec["rejected"]))
            continue
        missing = [k for k in ("prompt", "chosen", "rejected") if k not in rec]
        if missing:
            raise ConfigError(f"preference file {p} line {n} lacks {', '.join(missing)} "
                              "(expected prompt/chosen/rejected)")
        out.append(Comparison(text(rec["prompt"], n, "prompt"), text(rec["chosen"], n, "chosen"),
                              text(rec["rejected"], n, "rejected")))
    if not out:
        raise ConfigError(f"preference file {p} holds no pairs")
    return out


def _reward_model(args: argparse.Namespace) -> int:
    cfg = _cfg(args)
    comps = [c for f in args.pairs for c in read_comparisons(f)]
    heldout = read_comparisons(args.heldout) if args.heldout else None
    env = dist.setup(cfg.run)
    start = _policy_dir(cfg, args.policy, env)
    _, tok = load_policy(start)
    run = Path(cfg.out) / "reward_model"
    rm = train_reward_model(start, tok, comps, cfg, run / "base", env)
    max_len = context_length(rm.backbone) or 2048  # the backbone's own context, as reward_stage reads it
    if args.rrm:
        extra = rrm_augment(rm, tok, comps, cfg.reward.rrm_per_example, cfg.reward.rrm_threshold, max_len, cfg.seed)
        print(f"RRM: kept {len(extra)} augmented pairs")
        rm = train_reward_model(start, tok, comps + extra, cfg, run / "rrm", env)
    if heldout:
        print(json.dumps({"heldout_accuracy": accuracy(rm, ComparisonData(tok, heldout, max_len))}))
    return 0


def register_cli(verbs) -> None:
    """The stages as verbs of ``fmrecipes sso``."""
    add_verb(verbs, "sft", "train the assistant world's start policy (tokenizer + SFT)", _sft)
    v = add_verb(verbs, "generate", "sample on-policy (y+, y-, y0) triples under x+, x-, x", _generate)
    v.add_argument("--policy", help="policy directory (ours or a Hugging Face chat model); default: the SFT policy")
    v.add_argument("--iteration", type=positive_int, default=1, help="which slice of the training queries (1-based)")
    v = add_verb(verbs, "train", "iterative on-policy training: generate, freeze the reference, one epoch", _train)
    v.add_argument("--method", choices=METHODS, default="sso", help="sso, or a baseline on (x, y+, y-) only")
    v.add_argument("--policy", help="start policy directory; default: the SFT policy")
    v = add_verb(verbs, "reward-model", "train a Bradley-Terry reward model on preference pairs", _reward_model)
    v.add_argument("--pairs", nargs="+", required=True, help="SSO triples.jsonl and/or TRL-format preference jsonl")
    v.add_argument("--rrm", action="store_true", help="add RRM augmentation (filtered by the plain RM)")
    v.add_argument("--heldout", help="labelled preference jsonl to report accuracy on")
    v.add_argument("--policy", help="backbone: a policy directory; default: the SFT policy")
