"""The instance pool: the packed training corpus split into D_ref (reference data) and D (scored)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core import dist
from ..data.prepared import packed, prepare
from ..data.tokens import PackedDataset


class Subset:
    """Rows ``indices`` of a dataset with ``batch(indices)``, re-indexed from 0."""

    def __init__(self, data, indices: np.ndarray):
        self.data = data
        self.indices = np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.indices)

    def batch(self, idx):
        return self.data.batch(self.indices[np.asarray(idx, dtype=np.int64)])


def index_hash(indices: np.ndarray, seq_len: int, corpus_id: str) -> str:
    """Identity of an ordered instance list: scores are only comparable under the same hash."""
    h = hashlib.sha1(f"{corpus_id}|{seq_len}|".encode())
    h.update(np.ascontiguousarray(indices, dtype=np.int64).tobytes())
    return h.hexdigest()


@dataclass
class Pool:
    tokenizer: object
    train: PackedDataset  # every training instance (the teacher trains on all of them)
    val: PackedDataset  # the held-out validation split of the whole corpus
    ref_indices: np.ndarray  # D_ref
    pool_indices: np.ndarray  # D = train minus D_ref, in corpus order
    corpus_id: str

    @property
    def pool_hash(self) -> str:
        return index_hash(self.pool_indices, self.train.seq_len, self.corpus_id)

    def domains(self, data: PackedDataset, indices: np.ndarray) -> list[str]:
        """The domain of each instance (that of the document holding its first token)."""
        return data.shard.domain_at(np.asarray(indices, dtype=np.int64) * data.stride)


def ref_split(n: int, ref_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(D_ref, D) instance indices: a seeded random ``ref_fraction`` is held out; both keep corpus order."""
    rng = np.random.default_rng(seed)
    is_ref = rng.random(n) < ref_fraction
    return np.flatnonzero(is_ref), np.flatnonzero(~is_ref)


def build_pool(cfg, env: dist.DistEnv | None = None) -> Pool:
    """Tokenize the corpus once into ``<out>/data`` and split its instances into D_ref and D."""
    data_dir = Path(cfg.out) / "data"
    tok, train_shard, val_shard = prepare(cfg.data, cfg.vocab_size, data_dir, None, env)
    train, val = packed(train_shard, val_shard, cfg.seq_len, cfg.data.sources)
    ref, pool = ref_split(len(train), cfg.ref_fraction, cfg.seed)
    corpus_id = (data_dir / "prepared.json").read_text()
    return Pool(tok, train, val, ref, pool, hashlib.sha1(corpus_id.encode()).hexdigest()[:16])

