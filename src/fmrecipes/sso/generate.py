"""On-policy generation of SSO triples (notes Sec. 1.3): for each query x the current policy samples
y+ ~ pi(.|x+), y- ~ pi(.|x-) and y0 ~ pi(.|x) (temperature 0.7, top-p 0.8).

Work is done in chunks of queries, each written atomically, so a killed run resumes at the first missing chunk
and reproduces the same triples (every micro-batch has its own seed). The result is ``triples.jsonl`` (fields of
the official ``example_online.json``: instruction, system, p_system, n_system, chosen, rejected, raw) and
``pairs.jsonl``: the three preference pairs of each triple in TRL's conversational format
(``prompt``/``chosen``/``rejected`` message lists).
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch.nn as nn
from tqdm.auto import tqdm

from ..core.fileio import atomic_write_text, ensure_dir
from ..core.fingerprint import digest, guard_inputs, weights_digest
from ..core.generation import sample_batch
from ..core.seeding import stream_seed
from ..errors import ConfigError
from .chat import messages, prompt_ids
from .principles import pick_features, system_prompt
from .world import Query, Task


@dataclass
class GenerationConfig:
    temperature: float = 0.7
    top_p: float = 0.8
    max_new_tokens: int = 48
    batch_size: int = 64  # sequences per sampling call
    chunk: int = 128  # queries per resumable chunk
    features_per_query: int = 2
    concision_prob: float = 0.2


def sample_texts(policy: nn.Module, tok, prompts: list[list[int]], cfg: GenerationConfig, seed: int) -> list[str]:
    """One sampled response per prompt, decoded; micro-batch ``b`` uses seed ``stream_seed(seed, b)``."""
    out = []
    for b in range(0, len(prompts), cfg.batch_size):
        rows = sample_batch(policy, prompts[b:b + cfg.batch_size], tok.eos_token_id, cfg.max_new_tokens,
                            cfg.temperature, cfg.top_p, stream_seed(seed, b))
        out += [tok.decode(r, skip_special_tokens=True).strip() for r in rows]
    return out


def _strip_prefix(text: str, adjectives: list[str]) -> str:
    """Drop an "Accurate response:"-style lead-in before the equality check (as ``build_data.py`` does)."""
    pattern = r"^\s*(" + "|".join(re.escape(a) for a in adjectives) + r")[^:\n]{0,20}:\s*"
    return re.sub(pattern, "", text, flags=re.IGNORECASE) if adjectives else text


def degenerate(record: dict, adjectives: list[str]) -> bool:
    """A triple teaches nothing when two of y+, y-, y0 are equal (the official filter)."""
    yp, ym, y0 = (_strip_prefix(record[k], adjectives).strip() for k in ("chosen", "rejected", "raw"))
    return yp == ym or ym == y0 or yp == y0


def _chunk(policy: nn.Module, tok, task: Task, queries: list[Query], cfg: GenerationConfig,
           rng: np.random.Generator, seed: int) -> list[dict]:
    records, prompts = [], []
    for q in queries:
        names = pick_features(task.applicable(q), rng, cfg.features_per_query, cfg.concision_prob,
                              has_concision="Concision" in task.features)
        feats = [task.features[n] for n in names]
        rec = {**dataclasses.asdict(q), "instruction": q.text, "features": names, "system": "",
               "p_system": system_prompt(feats, True), "n_system": system_prompt(feats, False)}
        records.append(rec)
        prompts += [prompt_ids(tok, rec["p_system"], q.text), prompt_ids(tok, rec["n_system"], q.text),
                    prompt_ids(tok, "", q.text)]
    texts = sample_texts(policy, tok, prompts, cfg, seed)
    for i, rec in enumerate(records):
        rec["chosen"], rec["rejected"], rec["raw"] = texts[3 * i:3 * i + 3]
        adjectives = [a for n in rec["features"] for a in (task.features[n].good_adjective,
                                                           task.features[n].bad_adjective)]
        rec["degenerate"] = degenerate(rec, adjectives)
        if len(rec["chosen"]) > 20 and len(rec["rejected"]) > 20:  # then, as build_data.py, close cut-off text
            for key in ("chosen", "rejected"):
                if rec[key][-1].islower():
                    rec[key] += "."
    return records


def preference_pairs(record: dict) -> list[dict]:
    """The triple's three pairs (main, p, n) in TRL's conversational preference format."""
    pairs = [("main", record["system"], "chosen", "rejected"), ("p", record["p_system"], "chosen", "rejected"),
             ("n", record["n_system"], "raw", "chosen")]
    return [{"pair": name, "prompt": messages(system, record["instruction"]),
             "chosen": [{"role": "assistant", "content": record[c]}],
             "rejected": [{"role": "assistant", "content": record[r]}]} for name, system, c, r in pairs]


def generate_triples(policy: nn.Module, tok, task: Task, queries: list[Query], cfg: GenerationConfig,
                     out_dir: str | Path, seed: int, progress: bool = True) -> list[dict]:
    """Sample (y+, y-, y0) for every query; returns the kept (non-degenerate) triples, in query order."""
    if not queries:
        raise ConfigError("the query set is empty: nothing to generate")
    out = ensure_dir(out_dir)
    inputs = {"queries": digest(queries), "principles": digest(task.features), "generation": digest(cfg),
              "seed": str(seed), "policy": weights_digest(policy)}
    guard_inputs(out, inputs, "triples", record=False)
    final = out / "triples.jsonl"
    if not final.is_file():
        chunks = ensure_dir(out / "chunks")
        starts = range(0, len(queries), cfg.chunk)
        for c, start in enumerate(tqdm(starts, desc="generate", disable=not progress, leave=False)):
            path = chunks / f"{c:05d}.jsonl"
            if path.is_file():
                continue
            rng = np.random.default_rng([seed, c])
            recs = _chunk(policy, tok, task, queries[start:start + cfg.chunk], cfg, rng, seed * 100_003 + c)
            guard_inputs(out, inputs, "triples")  # recorded with the first chunk
            atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in recs))
        lines = "".join((chunks / f"{c:05d}.jsonl").read_text() for c in range(len(starts)))
        kept = [r for r in map(json.loads, lines.splitlines()) if not r["degenerate"]]
        atomic_write_text(out / "pairs.jsonl", "".join(json.dumps(p) + "\n" for r in kept for p in preference_pairs(r)))
        atomic_write_text(final, lines)
    records = [json.loads(line) for line in final.read_text().splitlines()]
    return [r for r in records if not r["degenerate"]]
