"""The instance pool: the packed training corpus split by document into the teacher's data, D_ref (the
reference's data) and D (scored and selected), so that neither model that scores D was trained on any of it."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core import dist
from ..core.fileio import atomic_write_bytes
from ..data.prepared import packed, prepare
from ..data.tokens import PackedDataset
from ..errors import ConfigError


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
    train: PackedDataset  # every training instance of the corpus
    val: PackedDataset  # the held-out validation split of the whole corpus
    teacher_indices: np.ndarray  # the teacher's training data
    ref_indices: np.ndarray  # D_ref, the reference's training data
    pool_indices: np.ndarray  # D, scored and selected from; all three in corpus order, no document shared
    corpus_id: str

    @property
    def pool_hash(self) -> str:
        return index_hash(self.pool_indices, self.train.seq_len, self.corpus_id)

    def domains(self, data: PackedDataset, indices: np.ndarray) -> list[str]:
        """The domain of each instance (that of the document holding its first token)."""
        return data.shard.domain_at(np.asarray(indices, dtype=np.int64) * data.stride)


def document_parts(n_docs: int, fractions: dict[str, float], seed: int = 0) -> np.ndarray:
    """Each document's part, an index into ``[*fractions, "pool"]``: a seeded permutation of the documents gives
    each named part its ``fraction`` of them, the rest go to the pool."""
    order = np.random.default_rng(seed).permutation(n_docs)
    part_of_doc = np.full(n_docs, len(fractions), dtype=np.int64)
    lo = 0
    for k, frac in enumerate(fractions.values()):
        hi = lo + int(round(frac * n_docs))
        part_of_doc[order[lo:hi]] = k
        lo = hi
    return part_of_doc


def document_split(data: PackedDataset, fractions: dict[str, float], seed: int = 0) -> dict[str, np.ndarray]:
    """Instance indices of each part (:func:`document_parts`, the rest named ``"pool"``): an instance belongs to
    the part holding every document it touches, the first, the last and any short one between. Instances that
    touch documents of two parts are dropped, so no part sees any token of another part's documents. Each part
    keeps corpus order."""
    part_of_doc = document_parts(len(data.shard.doc_index), fractions, seed)
    changes = np.concatenate([[0], np.cumsum(part_of_doc[1:] != part_of_doc[:-1])])  # part changes up to doc
    doc_first, doc_last = document_span(data, np.arange(len(data), dtype=np.int64))
    part, same = part_of_doc[doc_first], changes[doc_first] == changes[doc_last]
    names = [*fractions, "pool"]
    return {name: np.flatnonzero(same & (part == k)) for k, name in enumerate(names)}


def document_span(data: PackedDataset, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first and the last document (numbers in the corpus) that each instance of ``indices`` touches."""
    starts = data.shard.doc_index
    first = np.asarray(indices, dtype=np.int64) * data.stride
    return (np.searchsorted(starts, first, side="right") - 1,
            np.searchsorted(starts, first + data.seq_len, side="right") - 1)


def instance_documents(data: PackedDataset, indices: np.ndarray) -> np.ndarray:
    """The documents (numbers in the corpus) that the instances ``indices`` touch, any of their tokens."""
    lo, hi = document_span(data, indices)
    return np.unique(np.concatenate([np.arange(a, b + 1) for a, b in zip(lo, hi)] or [np.zeros(0, np.int64)]))


def record_parts(pool: Pool, out: Path) -> Path:
    """``out/parts.npz``: the instance indices of the teacher's data, D_ref and D (what each model may read), so
    that a run can be checked for leaks after the fact."""
    path = Path(out) / "parts.npz"
    buf = io.BytesIO()
    np.savez(buf, teacher=pool.teacher_indices, reference=pool.ref_indices, pool=pool.pool_indices)
    atomic_write_bytes(path, buf.getvalue())
    return path


def build_pool(cfg, env: dist.DistEnv | None = None) -> Pool:
    """Tokenize the corpus once into ``<out>/data`` and split its training instances by document into the
    teacher's data, D_ref and D (:func:`document_split`)."""
    data_dir = Path(cfg.out) / "data"
    tok, train_shard, val_shard = prepare(cfg.data, cfg.vocab_size, data_dir, None, env)
    train, val = packed(train_shard, val_shard, cfg.seq_len, cfg.data.sources)
    parts = document_split(train, {"teacher": cfg.teacher_fraction, "reference": cfg.ref_fraction}, cfg.seed)
    for name, idx in parts.items():
        if len(idx) == 0:
            raise ConfigError(f"the corpus's {name} part has no instances ({len(train.shard.doc_index)} documents); "
                              "use more documents or change teacher_fraction / ref_fraction")
    corpus_id = (data_dir / "prepared.json").read_text()
    return Pool(tok, train, val, parts["teacher"], parts["reference"], parts["pool"],
                hashlib.sha1(corpus_id.encode()).hexdigest()[:16])


def skipped_eos(cfg, pool: Pool) -> int | None:
    """The EOS id whose input positions scoring and Vanilla KD skip (``cfg.skip_eos_positions``), else None."""
    return pool.train.shard.meta.get("eos_id") if cfg.skip_eos_positions else None
