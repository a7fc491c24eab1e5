"""Gold-judge evaluation on held-out queries with no principle (the prompt x), and gold-labelled pairs."""

from __future__ import annotations

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


def judge_all(task: Task, queries: list[Query], texts: list[str]) -> list[dict[str, float]]:
    verdicts = [task.judge(q, t) for q, t in zip(queries, texts, strict=True)]
    if any(v is None for v in verdicts):
        raise FmError("this task has no gold judge; gold scores need task=assistant_world")
    return verdicts  # type: ignore[return-value]


def gold_report(task: Task, queries: list[Query], texts: list[str], tok) -> dict[str, float]:
    """Mean gold score (each response: the mean of its applicable features), each feature's rate, and the
    mean response length in tokens."""
    verdicts = judge_all(task, queries, texts)
    report = {"score": float(np.mean([np.mean(list(v.values())) for v in verdicts]))}
    for f in sorted({f for v in verdicts for f in v}):
        report[f"feature.{f}"] = float(np.mean([v[f] for v in verdicts if f in v]))
    report["length"] = float(np.mean([len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts]))
    return report


def win_rate(task: Task, queries: list[Query], texts: list[str], baseline: list[str]) -> float:
    """Fraction of queries where the gold score beats the baseline's response (ties count one half)."""
    ours = [np.mean(list(v.values())) for v in judge_all(task, queries, texts)]
    theirs = [np.mean(list(v.values())) for v in judge_all(task, queries, baseline)]
    return float(np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a, b in zip(ours, theirs, strict=True)]))


def gold_pairs(policy: nn.Module, tok, task: Task, queries: list[Query], gen: GenerationConfig,
               seed: int) -> list[Comparison]:
    """Two samples per query from ``policy`` without principles, ordered by the gold judge; ties dropped (the
    synthetic world's stand-in for human-labelled pairs such as UltraFeedback)."""
    a = respond(policy, tok, queries, gen, seed)
    b = respond(policy, tok, queries, gen, seed + 1)
    sa = [np.mean(list(v.values())) for v in judge_all(task, queries, a)]
    sb = [np.mean(list(v.values())) for v in judge_all(task, queries, b)]
    return [Comparison(q.text, x, y) if s > t else Comparison(q.text, y, x)
            for q, x, y, s, t in zip(queries, a, b, sa, sb, strict=True) if s != t]
