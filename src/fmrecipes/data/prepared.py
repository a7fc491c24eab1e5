"""Prepare a run's data once: tokenizer + train/validation token shards, cached in the run directory."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from ..core import dist
from ..core.fileio import atomic_write_json
from ..core.tokenizer import load_tokenizer, train_bpe
from ..errors import FmError
from .corpora import CorpusConfig, load_documents, split
from .tokens import PackedDataset, TokenShard, write_shard


def fingerprint(data: CorpusConfig, vocab_size: int, tokenizer_src: str | None) -> str:
    blob = json.dumps({"data": dataclasses.asdict(data), "vocab_size": vocab_size, "tokenizer": tokenizer_src},
                      sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def prepare(data: CorpusConfig, vocab_size: int, data_dir: str | Path, tokenizer_src: str | None = None,
            env: dist.DistEnv | None = None):
    """Tokenizer and (train, val) token shards in ``data_dir``; built by rank 0 once, then reused.

    ``tokenizer_src`` is a local tokenizer directory (e.g. a Hugging Face model's); without one a
    byte-level BPE of ``vocab_size`` is trained on the training split.
    """
    env = env or dist.DistEnv()
    data_dir = Path(data_dir)
    fp = fingerprint(data, vocab_size, tokenizer_src)
    meta_path = data_dir / "prepared.json"
    error = None
    if env.is_main and not meta_path.is_file():
        try:
            _build(data, vocab_size, data_dir, tokenizer_src, fp)
        except FmError as exc:
            error = str(exc)
    error = dist.broadcast_object(error, env)
    if error:
        raise FmError(error)
    dist.barrier(env)
    meta = json.loads(meta_path.read_text())
    if meta["fingerprint"] != fp:
        raise FmError(f"{data_dir} was prepared with a different data/tokenizer config; use a new output directory")
    tok = load_tokenizer(data_dir / "tokenizer")
    return tok, TokenShard(data_dir / "train"), TokenShard(data_dir / "val")


def _build(data: CorpusConfig, vocab_size: int, data_dir: Path, tokenizer_src: str | None, fp: str) -> None:
    docs = load_documents(data)
    train_docs, val_docs = split(docs, data.val_fraction)
    if tokenizer_src:
        tok = load_tokenizer(tokenizer_src)
        tok.save_pretrained(str(data_dir / "tokenizer"))
    else:
        tok = train_bpe((d.text for d in train_docs), vocab_size, data_dir / "tokenizer")
    if len(tok) > vocab_size:
        raise FmError(f"tokenizer has {len(tok)} tokens but the model's vocab_size is {vocab_size}")
    for name, part in (("train", train_docs), ("val", val_docs)):
        ids = tok([d.text for d in part], add_special_tokens=False)["input_ids"]
        write_shard(data_dir / name, ids, tok.eos_token_id, vocab_size, domains=[d.domain for d in part])
    atomic_write_json(data_dir / "prepared.json", {"fingerprint": fp, "num_docs": len(docs),
                                                   "train_docs": len(train_docs), "val_docs": len(val_docs)})


def packed(train: TokenShard, val: TokenShard, seq_len: int, sources: list[str]) -> tuple[PackedDataset, PackedDataset]:
    label = ", ".join(sources)
    return (PackedDataset(train, seq_len, f"corpus {label} (train split)"),
            PackedDataset(val, seq_len, f"corpus {label} (validation split)"))
