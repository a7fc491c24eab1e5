"""Atomic file and directory writes, and output-directory checks."""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FmError


def ensure_dir(path: str | Path, what: str = "output directory") -> Path:
    """Create ``path`` as a directory; a clear error if a file is in the way or it cannot be created (a
    read-only or missing parent, no permission)."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise FmError(f"{what} {p} exists and is a file, not a directory")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise FmError(f"{what} {p} cannot be created: a parent path is a file") from None
    except OSError as exc:
        raise FmError(f"{what} {p} cannot be created: {exc.strerror or exc} (choose a writable --out)") from None
    return p


def write_failed(what: Path, exc: OSError) -> FmError:
    """The one-line error of a failed write of ``what`` (a full disk, a quota, a read-only file system, an I/O
    error); callers write atomically, so what was there before is intact."""
    return FmError(f"cannot write {what}: {exc.strerror or exc}; what was written before is intact (the previous "
                   "checkpoint and summary stay usable): make room and run the same command again")


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (:func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    """Save ``array`` in ``.npy`` format to ``path`` atomically (:func:`atomic_write_bytes`)."""
    buf = io.BytesIO()
    np.save(buf, array)
    atomic_write_bytes(path, buf.getvalue())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and ``os.replace``: readers never see half a file, and a
    full disk leaves the old file and a one-line error."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise write_failed(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise write_failed(path, exc) from None
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


class AtomicDir:
    """Context manager: fill a temporary sibling directory, then rename it to ``path`` on success.

    A crash leaves only a ``.tmp-*`` directory, which readers ignore, so a half-written
    directory is never mistaken for a complete one.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.tmp = self.path.parent / f".tmp-{self.path.name}-{os.getpid()}"

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.tmp.mkdir()
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            if isinstance(exc, OSError):  # a full disk: one line, the previous directory untouched
                raise write_failed(self.path, exc) from None
            return
        if self.path.exists():
            old = self.path.parent / f".old-{self.path.name}-{os.getpid()}"
            os.replace(self.path, old)
            os.replace(self.tmp, self.path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(self.tmp, self.path)


def iter_jsonl(path: Path, text: str, what: str):
    """``(line_number, record)`` for each non-blank line of a JSON-lines ``text`` read from ``path``; a line
    that is not a JSON object is a one-line :class:`FmError` naming the ``what`` file and the line."""
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise FmError(f"{what} {path} line {n} is not valid JSON") from None
        if not isinstance(row, dict):
            raise FmError(f"{what} {path} line {n} is not a JSON object")
        yield n, row


def read_parquet(path: Path, what: str):
    """The ``pyarrow`` table of the parquet file ``path``; a file that is not parquet (or is cut short) is a
    one-line :class:`FmError` naming the ``what`` file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise FmError(f"{what} {path} is not a readable parquet file: {str(exc).splitlines()[0]}") from None


def saved_dataset(directory: Path):
    """The Hugging Face ``datasets`` dataset saved with ``save_to_disk`` at ``directory`` (a ``DatasetDict``: its
    first split), or None when ``directory`` is not one."""
    if not ((directory / "dataset_info.json").is_file() or (directory / "dataset_dict.json").is_file()):
        return None
    from datasets import load_from_disk

    ds = load_from_disk(str(directory))
    return ds[list(ds.keys())[0]] if hasattr(ds, "keys") else ds
