"""One rule for deriving the seed of a numbered random stream (step, epoch, micro-batch, example) from a run's
seed, so a stream's numbers depend only on (seed, index): a resumed run or another process count replays it."""

from __future__ import annotations

SEED_STRIDE = 1_000_003  # a prime: pairs (seed, index) with index below it give distinct seeds


def stream_seed(seed: int, index: int) -> int:
    """The seed of stream ``index`` of a run seeded ``seed``."""
    return seed * SEED_STRIDE + index
