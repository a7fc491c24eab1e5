"""Stage 3: keep the top-alpha instances of D by a selector's score, in corpus order; write the refined corpus."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from ..core import dist
from ..core.fileio import atomic_write_json
from ..data.tokens import PackedDataset, TokenShard, write_shard
from ..errors import FmError
from .losses import difference_score, rho_score


def top_alpha(scores: np.ndarray, alpha: float) -> np.ndarray:
    """Positions of the ``int(alpha·N)`` highest scores, deterministic (ties: lower position first),
    re-sorted ascending so the corpus order is kept (construct_pretrain_data.py)."""
    if not 0.0 < alpha <= 1.0:
        raise FmError(f"alpha={alpha} must be in (0, 1]")
    if np.isnan(scores).any():
        raise FmError("scores contain NaN; re-run scoring")
    k = int(alpha * len(scores))
    order = np.lexsort((np.arange(len(scores)), -scores))  # descending score, then ascending position
    return np.sort(order[:k])


def selector_scores(method: str, nll_teacher: np.ndarray | None = None, nll_ref: np.ndarray | None = None,
                    nll_proxy: np.ndarray | None = None, n: int | None = None, seed: int = 0) -> np.ndarray:
    """Scores whose top-alpha each selector keeps.

    * ``miniplm``: r = NLL_ref - NLL_teacher (difference sampling).
    * ``random``: a seeded uniform score.
    * ``teacher-loss``: -NLL_teacher (the lowest teacher loss first).
    * ``rho``: NLL_proxy - NLL_ref, RHO-LOSS's reducible loss computed once offline, with a briefly trained
      student as the proxy for the student's current loss and the reference LM (trained on held-out
      D_ref) as the irreducible-loss model. RHO proper recomputes the student term every step; this offline
      approximation is what a fixed refined corpus allows.
    """
    def need(name, arr):
        if arr is None:
            raise FmError(f"selector '{method}' needs {name} scores")
        return arr

    if method == "miniplm":
        return difference_score(need("teacher", nll_teacher), need("reference", nll_ref))
    if method == "teacher-loss":
        return -need("teacher", nll_teacher)
    if method == "rho":
        return rho_score(need("proxy-student", nll_proxy), need("reference", nll_ref))
    if method == "random":
        size = n if n is not None else len(need("any", nll_teacher if nll_teacher is not None else nll_ref))
        return np.random.default_rng(seed).random(size)
    raise FmError(f"unknown selector '{method}'; choose miniplm, random, teacher-loss or rho")


def write_refined(out_dir: str | Path, data, pool_indices: np.ndarray, kept: np.ndarray, domains: list[str],
                  vocab_size: int, method: str, alpha: float, env: dist.DistEnv | None = None) -> dict:
    """Write the kept instances (rows of seq_len+1 tokens, no EOS added; read back with
    :func:`refined_dataset`) as a token shard, plus ``kept.npy`` (positions in
    D) and a per-domain report ``selection.json``; returns the report. Under torchrun the main process writes
    and every process returns once the files are there (two writers of one shard would race)."""
    out = Path(out_dir)
    kept_domains = [domains[i] for i in kept]
    total, kept_count = Counter(domains), Counter(kept_domains)
    report = {"method": method, "alpha": alpha, "kept": int(len(kept)), "of": int(len(pool_indices)),
              "kept_fraction": {d: round(kept_count[d] / total[d], 4) for d in sorted(total)},
              "share_of_refined": {d: round(kept_count[d] / max(1, len(kept)), 4) for d in sorted(total)}}
    env = env or dist.single_process()
    if env.is_main:
        rows = (data.row(int(i)) for i in pool_indices[kept])
        write_shard(out / "shard", rows, None, vocab_size, {"instance_len": data.seq_len + 1, "method": method},
                    domains=kept_domains)
        np.save(out / "kept.npy", kept)
        atomic_write_json(out / "selection.json", report)
    dist.barrier(env)
    return report


def refined_dataset(root: str | Path, method: str, seq_len: int) -> PackedDataset:
    """The refined corpus that :func:`write_refined` wrote for ``method`` under ``root/refined/``."""
    shard = TokenShard(Path(root) / "refined" / method / "shard")
    return PackedDataset(shard, seq_len, f"refined corpus {method}", stride=seq_len + 1)
