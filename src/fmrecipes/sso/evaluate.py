"""Gold-judge evaluation on held-out queries with no principle (the prompt x); the off-policy annotated pairs (the
synthetic world's UltraFeedback); the reward models' independent test set; how often a method's synthetic
preferences agree with the gold judge."""

from __future__ import annotations

import zlib

import numpy as np
import torch.nn as nn

from ..errors import FmError
from .chat import prompt_ids
from .generate import GenerationConfig, sample_texts
from .reward import Comparison
from .world import Query, Task


def respond(policy: nn.Module, tok, queries: list[Query], gen: GenerationConfig, seed: int) -> list[str]:
    """The policy's sampled response to each query, without principles."""
    return sample_texts(policy, tok, [prompt_ids(tok, "", q.text) for q in queries], gen, seed)


def score_of(verdict: dict[str, float]) -> float:
    """A response's gold score: the mean of its applicable features' verdicts."""
    return float(np.mean(list(verdict.values())))


def judge_all(task: Task, queries: list[Query], texts: list[str]) -> list[dict[str, float]]:
    verdicts = [task.judge(q, t) for q, t in zip(queries, texts, strict=True)]
    if any(v is None for v in verdicts):
        raise FmError("this task has no gold judge; gold scores need task=assistant_world")
    return verdicts  # type: ignore[return-value]


def gold_report(task: Task, queries: list[Query], texts: list[str], tok) -> dict[str, float]:
    """Mean gold score (each response: the mean of its applicable features), each feature's rate, and the
    mean response length in tokens."""
    verdicts = judge_all(task, queries, texts)
    report = {"score": float(np.mean([score_of(v) for v in verdicts]))}
    for f in sorted({f for v in verdicts for f in v}):
        report[f"feature.{f}"] = float(np.mean([v[f] for v in verdicts if f in v]))
    report["length"] = float(np.mean([len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts]))
    return report


def win_rate(task: Task, queries: list[Query], texts: list[str], baseline: list[str]) -> float:
    """Fraction of queries where the gold score beats the baseline's response (ties count one half)."""
    ours = [score_of(v) for v in judge_all(task, queries, texts)]
    theirs = [score_of(v) for v in judge_all(task, queries, baseline)]
    return float(np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a, b in zip(ours, theirs, strict=True)]))


def _query_rng(seed: int, query: Query, salt: int = 0) -> np.random.Generator:
    """A stream fixed by the seed and the query alone: the same query always gets the same draws, whichever
    iteration or stage asks (the data is drawn once)."""
    return np.random.default_rng([seed, salt, zlib.crc32(query.text.encode())])


def annotated_pairs(world, queries: list[Query], label_noise: float, seed: int) -> list[Comparison]:
    """The synthetic world's UltraFeedback: per query, two responses drawn once from the world's own response
    model with every feature good or bad at random (no policy being trained wrote them: off-policy), ordered by
    an annotator that is not the evaluation's judge: the judge's preference flipped with probability
    ``label_noise``; ties dropped. The same query gives the same pair in every iteration and stage."""
    out = []
    for q in queries:
        rng = _query_rng(seed, q)
        a, b = (world.respond(q, {f: bool(rng.random() < 0.5) for f in world.applicable(q)}, rng) for _ in range(2))
        sa, sb = (score_of(world.judge(q, t)) for t in (a, b))
        if sa == sb:
            continue
        better, worse = (a, b) if sa > sb else (b, a)
        out.append(Comparison(q.text, worse, better) if rng.random() < label_noise else Comparison(q.text, better,
                                                                                                    worse))
    return out


def feature_contrasts(world, queries: list[Query], seed: int) -> dict[str, list[Comparison]]:
    """The reward models' test set, independent of both training distributions (as RewardBench's categories):
    per feature, for each query, two responses identical but for that feature (good first), every other feature
    drawn at random; ``queries`` are held out (facts no training query asks about)."""
    out: dict[str, list[Comparison]] = {}
    for q in queries:
        rng = _query_rng(seed, q, 1)
        others = {f: bool(rng.random() < 0.5) for f in world.applicable(q)}
        for f in world.applicable(q):
            state = int(rng.integers(2**63))
            good, bad = (world.respond(q, {**others, f: v}, np.random.default_rng(state)) for v in (True, False))
            out.setdefault(f, []).append(Comparison(q.text, good, bad))
    return out


def label_agreement(task: Task, queries: list[Query], records: list[dict]) -> dict[str, float]:
    """How often the gold judge agrees with a method's synthetic preference (chosen over rejected): ``agree``
    counts a tie as one half (the paper's preference accuracy, 0.85-0.93), ``ties`` the share of tied pairs."""
    by_text = {q.text: q for q in queries}
    scores = [tuple(score_of(task.judge(by_text[r["instruction"]], r[k])) for k in ("chosen", "rejected"))
              for r in records]
    if not scores:
        return {"agree": float("nan"), "ties": float("nan"), "pairs": 0}
    return {"agree": float(np.mean([1.0 if c > r else 0.5 if c == r else 0.0 for c, r in scores])),
            "ties": float(np.mean([c == r for c, r in scores])), "pairs": len(scores)}
