"""Tokenized corpora as memory-mapped token shards, and packing into fixed-length instances.

A shard is a directory holding ``tokens.bin`` (uint16 when the vocabulary fits, else uint32; each
document followed by EOS), ``doc_index.npy`` (document start offsets) and ``meta.json``. Shards
are written atomically (a temporary directory renamed into place), so a killed write never
leaves a shard that looks complete.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from ..core.fileio import AtomicDir
from ..errors import FmError


def write_shard(path: str | Path, token_lists: Iterable[Sequence[int]], eos_id: int | None, vocab_size: int,
                extra_meta: dict | None = None, domains: Sequence[str] | None = None) -> "TokenShard":
    """Write documents' token ids as a shard at ``path``, EOS appended after each unless ``eos_id`` is None.

    ``domains`` optionally tags each document with its domain (stored as ``doc_domain.npy`` ids).
    """
    dtype = np.uint16 if vocab_size <= 2**16 else np.uint32
    starts, chunks, total = [], [], 0
    for ids in token_lists:
        arr = np.asarray(list(ids) + ([] if eos_id is None else [eos_id]), dtype=dtype)
        starts.append(total)
        chunks.append(arr)
        total += len(arr)
    with AtomicDir(path) as tmp:
        (np.concatenate(chunks) if chunks else np.zeros(0, dtype)).tofile(tmp / "tokens.bin")
        np.save(tmp / "doc_index.npy", np.asarray(starts, dtype=np.int64))
        names = sorted(set(domains)) if domains is not None else []
        if domains is not None:
            np.save(tmp / "doc_domain.npy", np.asarray([names.index(d) for d in domains], dtype=np.int32))
        meta = {"dtype": np.dtype(dtype).name, "num_tokens": total, "num_docs": len(starts),
                "eos_id": eos_id, "vocab_size": vocab_size, "domains": names, **(extra_meta or {})}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
    return TokenShard(path)


class TokenShard:
    """A read-only, memory-mapped token shard."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        meta_path = self.path / "meta.json"
        if not meta_path.is_file():
            raise FmError(f"token shard {self.path} is missing or incomplete (no meta.json)")
        self.meta = json.loads(meta_path.read_text())
        n = self.meta["num_tokens"]
        bin_path = self.path / "tokens.bin"
        expected = n * np.dtype(self.meta["dtype"]).itemsize
        if not bin_path.is_file() or bin_path.stat().st_size != expected:
            size = bin_path.stat().st_size if bin_path.is_file() else 0
            raise FmError(f"token shard {self.path} is truncated or corrupt (tokens.bin has {size} bytes, "
                          f"expected {expected})")
        self.tokens = np.memmap(bin_path, dtype=self.meta["dtype"], mode="r", shape=(n,)) if n else \
            np.zeros(0, dtype=self.meta["dtype"])
        self.doc_index = np.load(self.path / "doc_index.npy")

    def __len__(self) -> int:
        return int(self.meta["num_tokens"])

    def domain_at(self, positions: np.ndarray) -> list[str]:
        """The domain of the document holding each token position ("unknown" if the shard has no tags)."""
        path = self.path / "doc_domain.npy"
        if not path.is_file():
            return ["unknown"] * len(positions)
        doc = np.searchsorted(self.doc_index, positions, side="right") - 1
        names = self.meta["domains"]
        return [names[i] for i in np.load(path)[doc]]

    def document(self, i: int) -> np.ndarray:
        """Token ids of document ``i`` (without its trailing EOS)."""
        end = self.doc_index[i + 1] if i + 1 < len(self.doc_index) else len(self)
        return np.asarray(self.tokens[self.doc_index[i]: end - 1])


class PackedDataset:
    """Fixed-length instances cut from a shard's token stream (documents packed, EOS between them).

    Instance ``i`` is tokens ``[i·S, i·S + L + 1)`` with stride S = L by default: inputs are the first L
    tokens, targets the last L. A shard of stored rows of L + 1 tokens (a refined corpus) uses S = L + 1.
    """

    def __init__(self, shard: TokenShard, seq_len: int, name: str = "corpus", stride: int | None = None):
        self.shard = shard
        self.seq_len = seq_len
        self.stride = stride or seq_len
        self.num_instances = (len(shard) - seq_len - 1) // self.stride + 1 if len(shard) > seq_len else 0
        if self.num_instances < 1:
            raise FmError(f"{name} has {len(shard)} tokens, fewer than one sequence of seq_len+1={seq_len + 1} "
                          "tokens; use more text or a smaller model.seq_len")

    def __len__(self) -> int:
        return self.num_instances

    def batch(self, indices: Sequence[int] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets), each a (len(indices), L) int64 tensor."""
        t = torch.from_numpy(np.stack([self.row(int(i)) for i in indices]))
        return t[:, :-1], t[:, 1:]

    def row(self, i: int) -> np.ndarray:
        """The L + 1 token ids of instance ``i``."""
        start = i * self.stride
        return np.asarray(self.shard.tokens[start: start + self.seq_len + 1], dtype=np.int64)
