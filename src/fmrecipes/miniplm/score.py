"""Stage 2: per-instance mean token log-likelihood of every instance of D, resumable and rank-sharded.

Micro-batches of ``batch_size`` instances are dealt round-robin to ranks, so every instance is computed in
exactly the same micro-batch whatever the number of processes (2-rank scores equal 1-rank scores bit for
bit). Each chunk of ``chunk`` instances is saved atomically; a killed run resumes at the first missing chunk.
The result ``scores.npy`` (float32, aligned with D's order) comes with ``meta.json`` holding the hash of
the instance index, which ``select`` checks.

Instances in the corpus's own tokens go through :class:`Scorer`, the same per-instance NLL as the plain forward of
:func:`score_batch` (the official scorer's numbers) computed faster. Where the time goes in the plain loop
(``benchmarks/miniplm_score.py --profile``): matrix multiplies, then the (B·T, V) logits' log-softmax and the
element-wise work around them. The scorer

1. runs the model's decoder to its final hidden states, then the LM head and ``logsumexp`` on 1,024 positions at
   a time (:func:`~fmrecipes.core.linear_cross_entropy.token_nll`): the slice of logits stays in cache and the whole
   log-softmax is never written;
2. pads MLP hidden widths to a multiple of 16 (:mod:`fmrecipes.core.aligned_mlp`; exact);
3. optionally ``torch.compile``s the forward (Inductor, weights frozen as constants: fused element-wise work),
   every micro-batch at one shape, falling back to eager where no compiler works.

Models that expose no decoder and linear head (:meth:`~fmrecipes.core.causal_lm.CausalLM.hidden_and_head`), and
those whose output the scorer's check finds different, are scored by the plain forward.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from tqdm.auto import tqdm

from ..core import dist
from ..core.aligned_mlp import aligned_mlps
from ..core.causal_lm import causal_lm
from ..core.checkpoint import unwrap
from ..core.compile import compiler_available, maybe_compile
from ..core.fileio import atomic_save_npy, atomic_write_json, ensure_dir
from ..core.linear_cross_entropy import token_nll
from ..errors import FmError, warn
from .losses import eos_input_mask, instance_nll, masked_mean

AUTO_COMPILE_INSTANCES = 8192
CHECK_TOLERANCE = 1e-3  # nats: a head the split misses (a logit scale, a cap) moves scores far more than this


def model_vocab(model: nn.Module) -> int:
    return causal_lm(model).vocab_size


@torch.inference_mode()
def score_batch(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device,
                text_tokenizers: tuple | None = None, eos_id: int | None = None, bf16: bool = False) -> np.ndarray:
    """Mean token NLL of each instance (nats per corpus token), skipping positions whose input is ``eos_id``
    (:func:`eos_input_mask`; None skips nothing). With ``text_tokenizers=(corpus_tok, model_tok)`` the instance is
    decoded to text and re-encoded with the model's own tokenizer (a teacher of another family); its total NLL
    (positions after the model's own EOS skipped alike) is divided by the instance's count of kept corpus tokens,
    the unit every other score uses. ``bf16``: under bf16 autocast (the run's precision, ``DistEnv.bf16``)."""
    keep = eos_input_mask(x, eos_id)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        if text_tokenizers is None:
            nll = instance_nll(causal_lm(model).logits(x.to(device)), y.to(device),
                               None if keep is None else keep.to(device))
        else:
            corpus_tok, model_tok = text_tokenizers
            rows = torch.cat([x[:, :1], y], dim=1)
            texts = corpus_tok.batch_decode(rows.tolist())
            enc = model_tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
            own = eos_input_mask(ids[:, :-1], model_tok.eos_token_id if eos_id is not None else None)
            mask = mask[:, 1:] if own is None else mask[:, 1:] * own
            count = y.shape[1] if keep is None else keep.sum(1).clamp_min(1).to(device)
            nll = instance_nll(causal_lm(model).logits(ids, enc["attention_mask"].to(device))[:, :-1], ids[:, 1:], mask,
                               per_tokens=count)
    return nll.float().cpu().numpy()


def score(model: nn.Module, data, indices: np.ndarray, out_dir: str | Path, pool_hash: str, name: str,
          batch_size: int = 32, chunk: int = 512, env: dist.DistEnv | None = None,
          text_tokenizers: tuple | None = None, eos_id: int | None = None) -> np.ndarray:
    """Score ``data`` rows ``indices`` with ``model`` into ``out_dir`` (scores.npy + meta.json), skipping
    positions whose input is ``eos_id`` (None: none). Instances in the corpus's own tokens go through the fast
    :class:`Scorer` (compiled per :func:`compiles`), re-tokenised ones through
    :func:`score_batch`."""
    env = env or dist.single_process()
    out = Path(out_dir)
    final = out / "scores.npy"
    if (out / "meta.json").is_file():
        meta = json.loads((out / "meta.json").read_text())
        if meta["pool_hash"] != pool_hash:
            raise FmError(f"score file {out} was computed on another corpus or instance order "
                          f"(hash {meta['pool_hash'][:12]} != {pool_hash[:12]}); use a new output directory")
        return read_npy(final, f"score file {final}", f"delete {out} and score again")
    if env.is_main:
        ensure_dir(out / "chunks")
    dist.barrier(env)
    model.eval().to(env.device)
    n = len(indices)
    n_chunks = math.ceil(n / chunk)
    bar = tqdm(total=n, desc=f"score {name}", unit="inst", disable=not (env.progress and env.is_main))
    with aligned_mlps(model):
        scorer = Scorer(model, env.device, eos_id, batch_size, compiles(env, n), env.bf16) \
            if text_tokenizers is None else None
        for c in range(n_chunks):
            _score_chunk(c, chunk, n, batch_size, out, data, indices, env, bar,
                         scorer or (lambda x, y: score_batch(model, x, y, env.device, text_tokenizers, eos_id,
                                                             env.bf16)))
    bar.close()
    scores = np.concatenate([np.load(out / "chunks" / f"chunk_{c:06d}.npy") for c in range(n_chunks)]) \
        if n_chunks else np.zeros(0, np.float32)
    if env.is_main:
        atomic_save_npy(final, scores)
        atomic_write_json(out / "meta.json", {"pool_hash": pool_hash, "count": int(n), "name": name,
                                              "mean_nll": float(scores.mean()) if n else None})
    dist.barrier(env)
    return scores


def compiles(env: dist.DistEnv, n: int) -> bool:
    """Whether scoring ``n`` instances compiles its forward: ``run.compile`` true, or auto, a compiler here and at
    least :data:`AUTO_COMPILE_INSTANCES` of them (compiling takes seconds to a minute, which a small pool never
    wins back)."""
    return env.compile is True or (env.compile == "auto" and n >= AUTO_COMPILE_INSTANCES
                                   and compiler_available(env.device))


def _score_chunk(c: int, chunk: int, n: int, batch_size: int, out: Path, data, indices: np.ndarray,
                 env: dist.DistEnv, bar, score_fn) -> None:
    """Chunk ``c`` of the instances: this rank's micro-batches by ``score_fn(x, y)``, merged over ranks and saved
    atomically by the main process; skipped when a sound chunk file exists."""
    path = out / "chunks" / f"chunk_{c:06d}.npy"
    lo, hi = c * chunk, min(n, (c + 1) * chunk)
    if path.is_file() and _chunk_ok(path, hi - lo):
        bar.update(hi - lo)
        return
    mine = np.full(hi - lo, np.nan, dtype=np.float32)
    for j, s in enumerate(range(lo, hi, batch_size)):
        if j % env.world_size != env.rank:
            continue
        e = min(hi, s + batch_size)
        mine[s - lo:e - lo] = score_fn(*data.batch(indices[s:e]))
    merged = _merge(mine, env)
    if env.is_main:
        atomic_save_npy(path, merged)
    dist.barrier(env)
    bar.update(hi - lo)


def read_npy(path: Path, what: str, remedy: str) -> np.ndarray:
    """``np.load`` with a one-line error (naming ``what`` and the ``remedy``) for a truncated or corrupt file."""
    try:
        return np.load(path)
    except (ValueError, OSError, EOFError) as exc:
        raise FmError(f"{what} is truncated or corrupt ({str(exc).splitlines()[0]}); {remedy}") from None


def _chunk_ok(path: Path, count: int) -> bool:
    """Whether a finished chunk file holds ``count`` scores; a damaged one is scored again, with a warning."""
    try:
        ok = np.load(path).shape == (count,)
    except (ValueError, OSError, EOFError):
        ok = False
    if not ok:
        warn(f"score chunk {path} is truncated or corrupt; scoring it again")
    return ok


def _merge(mine: np.ndarray, env: dist.DistEnv) -> np.ndarray:
    """Each rank filled its own micro-batches (NaN elsewhere); combine them into one array."""
    if not env.distributed:
        return mine
    t = torch.from_numpy(np.nan_to_num(mine, nan=0.0)).double()
    filled = torch.from_numpy(~np.isnan(mine)).double()
    t, filled = dist.all_reduce_sum(t, env), dist.all_reduce_sum(filled, env)
    assert bool((filled == 1).all()), "every instance must be scored by exactly one rank"
    return t.float().numpy()


def require_scores(out_dir: str | Path) -> Path:
    """``out_dir`` if it holds a finished ``score`` run, else a one-line error."""
    out = Path(out_dir)
    if not (out / "meta.json").is_file() or not (out / "scores.npy").is_file():
        raise FmError(f"score directory {out} is missing or incomplete (no meta.json/scores.npy); run `score` first")
    return out


def load_scores(out_dir: str | Path, expected_hash: str | None = None, expected_count: int | None = None) -> np.ndarray:
    """Scores of a finished ``score`` run; one-line errors for missing, partial or mismatched files."""
    out = require_scores(out_dir)
    meta = json.loads((out / "meta.json").read_text())
    scores = read_npy(out / "scores.npy", f"score file {out / 'scores.npy'}", f"delete {out} and score again")
    if len(scores) != meta["count"] or (expected_count is not None and len(scores) != expected_count):
        raise FmError(f"score file {out / 'scores.npy'} has {len(scores)} scores, expected "
                      f"{expected_count if expected_count is not None else meta['count']}")
    if expected_hash is not None and meta["pool_hash"] != expected_hash:
        raise FmError(f"score file {out} comes from another corpus or instance order "
                      f"(hash {meta['pool_hash'][:12]}, expected {expected_hash[:12]})")
    return scores


class Scorer:
    """Mean token NLL of each packed instance (``x``, ``y`` of shape (B, T)), skipping positions whose input is
    ``eos_id``; ``__call__`` returns a float32 array. ``compile``: ``torch.compile`` the forward; ``bf16``: under
    bf16 autocast (the run's precision)."""

    def __init__(self, model: nn.Module, device: torch.device, eos_id: int | None, batch_size: int,
                 compile: bool = False, bf16: bool = False):
        self.model, self.device, self.eos_id, self.batch_size = unwrap(model), device, eos_id, batch_size
        self.bf16 = bf16
        parts = causal_lm(self.model).hidden_and_head()
        self.eager: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
        self.forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
        if parts is not None:
            hidden, head = parts
            self.eager = lambda x, y: token_nll(hidden(x), head, y)
            self.forward = maybe_compile(self.eager, compile, device, "the scoring forward", dynamic=False,
                                         options={"freezing": True})
        self.checked = False

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
        if self.forward is not None and not self.checked:
            self._check(x[:2], y[:2])
        if self.forward is None:
            return score_batch(self.model, x, y, self.device, eos_id=self.eos_id, bf16=self.bf16)
        n = x.shape[0]
        if n < self.batch_size:  # one shape for every micro-batch: the last one is padded with copies of its rows
            fill = torch.arange(self.batch_size) % n
            x, y = x[fill], y[fill]
        return self._mean_nll(self.forward, x, y)[:n]

    def _mean_nll(self, forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor,
                  y: torch.Tensor) -> np.ndarray:
        """Per-instance mean NLL of ``forward``'s per-token NLLs over the positions whose input is not EOS
        (under bf16 autocast when ``bf16``, as :func:`score_batch`)."""
        keep = eos_input_mask(x, self.eos_id)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            nll = forward(x.to(self.device), y.to(self.device))
        return masked_mean(nll.float(), None if keep is None else keep.to(self.device)).cpu().numpy()

    def _check(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """The split forward against the model's own on two instances; the plain forward from here on if they
        differ by more than :data:`CHECK_TOLERANCE`."""
        self.checked = True
        split = self._mean_nll(self.eager, x, y)
        own = score_batch(self.model, x, y, self.device, eos_id=self.eos_id, bf16=self.bf16)
        gap = float(np.abs(split - own).max())
        if not gap <= CHECK_TOLERANCE:
            warn(f"the fast scoring forward of {type(self.model).__name__} differs from its own forward by {gap:.3g} "
                 "nats; scoring with its own forward")
            self.forward = None
