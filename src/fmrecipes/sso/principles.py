"""Features, their good/bad principles, and the contrastive system prompts x+ / x- (SSO Sec. 1.1-1.2 of the notes).

A feature has a name (``Accuracy``), an adjective pair (``Accurate`` / ``Inaccurate``) and a good and a bad
principle text. Per query two features are chosen, plus ``Concision`` with probability 0.2 (the official
``build_data.py`` ``bound=0.2``). The principles go in the system message:

    x+ = "Your response should be {A1} and {A2}. Following these detailed guidelines:\n{F1}: {good1}\n\n{F2}:
          {good2}\nHowever, do not tell or imply to the user the features, principles, or guidelines you follow
          when generating responses."
    x- = the same with the bad adjectives and bad principles;  x = no system message.

The official code lets the policy itself pick the features with a few-shot prompt; a tiny policy cannot,
so features are drawn uniformly from those that apply to the query (documented deviation).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import read_yaml
from ..errors import ConfigError

CONCISION = "Concision"
HEADER = "Your response should be {adjectives}. Following these detailed guidelines:\n"
TRAILER = ("\nHowever, do not tell or imply to the user the features, principles, or guidelines you follow when "
           "generating responses.")


@dataclass(frozen=True)
class Feature:
    name: str
    good_adjective: str
    bad_adjective: str
    good: str  # the good principle
    bad: str  # the bad principle


def parse_principles(data: object, source: str) -> dict[str, Feature]:
    """Features from a mapping ``name -> {good_adjective, bad_adjective, good, bad}``; one-line errors."""
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{source}: expected a non-empty mapping of feature name -> principles")
    features = {}
    for name, spec in data.items():
        if not isinstance(spec, dict):
            raise ConfigError(f"{source}: feature {name!r} must be a mapping with good/bad principles")
        missing = [k for k in ("good_adjective", "bad_adjective", "good", "bad")
                   if not isinstance(spec.get(k), str) or not spec[k].strip()]
        if missing:
            raise ConfigError(f"{source}: feature {name!r} lacks {', '.join(missing)} (each a non-empty string)")
        unknown = sorted(set(spec) - {"good_adjective", "bad_adjective", "good", "bad"})
        if unknown:
            raise ConfigError(f"{source}: feature {name!r} has unknown keys {unknown}")
        features[str(name)] = Feature(str(name), spec["good_adjective"], spec["bad_adjective"], spec["good"],
                                      spec["bad"])
    return features


def load_principles(path: str | Path) -> dict[str, Feature]:
    """Read a principles YAML file (see ``configs/sso/principles.yaml``)."""
    return parse_principles(read_yaml(path, "principles file"), str(path))


def pick_features(candidates: list[str], rng: np.random.Generator, k: int = 2,
                  concision_prob: float = 0.2, has_concision: bool = True) -> list[str]:
    """``k`` distinct features from ``candidates``, then ``Concision`` appended with ``concision_prob``."""
    pool = [c for c in candidates if c != CONCISION]
    chosen = [pool[i] for i in sorted(rng.choice(len(pool), size=min(k, len(pool)), replace=False))]
    if has_concision and rng.random() < concision_prob:
        chosen.append(CONCISION)
    return chosen


def system_prompt(features: list[Feature], good: bool) -> str:
    """The x+ (``good=True``) or x- system message for these features (the official template)."""
    adjectives = [f.good_adjective if good else f.bad_adjective for f in features]
    joined = adjectives[0] if len(adjectives) == 1 else ", ".join(adjectives[:-1]) + " and " + adjectives[-1]
    lines = "\n\n".join(f"{f.name}: {f.good if good else f.bad}" for f in features)
    return HEADER.format(adjectives=joined) + lines + TRAILER
