"""Prepare a run's data once: tokenizer + train/validation token shards, cached in the run directory."""

from __future__ import annotations

from pathlib import Path

from ..core import dist
from ..core.fileio import AtomicDir, atomic_write_json
from ..core.fingerprint import INPUTS, digest, file_digest, guard_inputs
from ..core.tokenizer import BYTE_VOCAB, load_tokenizer, train_bpe
from ..errors import FmError
from .corpora import BUNDLED, CorpusConfig, load_documents, split
from .tokens import PackedDataset, TokenShard, write_shard


def input_digests(data: CorpusConfig, vocab_size: int, tokenizer_src: str | None) -> dict[str, str]:
    """What the prepared data is made from: the data config, and the bytes of every file it reads (your corpus
    files, a tokenizer directory), so a corpus edited between runs is noticed on resume."""
    inputs = {"data config": digest({"data": data, "vocab_size": vocab_size, "tokenizer": tokenizer_src})}
    for source in data.sources:
        if source not in (*BUNDLED, "bundled"):
            inputs[f"corpus {source}"] = file_digest(source) if Path(source).exists() else "missing"
    if tokenizer_src:
        inputs[f"tokenizer {tokenizer_src}"] = file_digest(tokenizer_src)
    return inputs


def prepare(data: CorpusConfig, vocab_size: int, data_dir: str | Path, tokenizer_src: str | None = None,
            env: dist.DistEnv | None = None, seq_len: int | None = None):
    """Tokenizer and (train, val) token shards in ``data_dir``; built by rank 0 once (all or nothing), then
    reused while its inputs (:func:`input_digests`) are unchanged.

    ``tokenizer_src`` is a local tokenizer directory (e.g. a Hugging Face model's); without one a
    byte-level BPE of ``vocab_size`` is trained on the training split. With ``seq_len``, each split must hold one
    sequence of it, or the error leaves nothing behind.
    """
    env = env or dist.single_process()
    data_dir = Path(data_dir)
    inputs = input_digests(data, vocab_size, tokenizer_src)
    meta_path = data_dir / "prepared.json"
    error = None
    if env.is_main and not meta_path.is_file():
        try:
            with AtomicDir(data_dir) as tmp:
                _build(data, vocab_size, tmp, tokenizer_src, digest(inputs))
                if seq_len is not None:
                    packed(TokenShard(tmp / "train"), TokenShard(tmp / "val"), seq_len, data.sources)
                atomic_write_json(tmp / INPUTS, inputs)
        except FmError as exc:
            error = str(exc)
    error = dist.broadcast_object(error, env)
    if error:
        raise FmError(error)
    dist.barrier(env)
    guard_inputs(data_dir, inputs, "token shards")
    tok = load_tokenizer(data_dir / "tokenizer")
    return tok, TokenShard(data_dir / "train"), TokenShard(data_dir / "val")


def _build(data: CorpusConfig, vocab_size: int, data_dir: Path, tokenizer_src: str | None, fp: str) -> None:
    if not tokenizer_src and vocab_size < BYTE_VOCAB:
        raise FmError(f"model vocab_size={vocab_size} is below the byte-level tokenizer's {BYTE_VOCAB} base tokens")
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
