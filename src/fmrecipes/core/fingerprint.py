"""Fingerprints of a stage's inputs, recorded beside its outputs, so that resuming notices a changed input.

Resumable stages (data preparation, generation, captioning) skip work whose output already exists. That is
only right while the inputs are the same: :func:`guard_inputs` records a digest of every input on the first
run and refuses, with a one-line error naming the changed input, to continue from outputs of other inputs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from ..errors import FmError
from .fileio import atomic_write_json

INPUTS = "inputs.json"


def digest(obj: Any) -> str:
    """A short digest of a JSON-able value (dataclasses become dicts)."""

    def plain(x: Any) -> Any:
        return dataclasses.asdict(x) if dataclasses.is_dataclass(x) and not isinstance(x, type) else str(x)

    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=plain).encode()).hexdigest()[:16]


def file_digest(path: str | Path) -> str:
    """A digest of a file's bytes, or of every file under a directory (relative names and bytes)."""
    p = Path(path)
    if not p.exists():
        raise FmError(f"input {p} does not exist")
    h = hashlib.sha1()
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    for f in files:
        h.update(str(f.relative_to(p) if p.is_dir() else "").encode())
        with f.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


def weights_digest(model: Any) -> str:
    """A digest of a model's weights (each tensor's sum and sum of squares, to 6 significant digits: cheap,
    and stable across machines)."""
    return digest([f"{float(t.double().sum()):.6g}/{float(t.double().square().sum()):.6g}"
                   for t in model.state_dict().values() if t.is_floating_point()])


def guard_inputs(directory: Path, inputs: dict[str, str], what: str, record: bool = True) -> None:
    """A one-line error if ``directory/inputs.json`` records other ``inputs`` (name -> digest): ``what`` (the
    directory's outputs) came from other inputs. Without a record, write one (``record=False``: leave that to
    the first output, so a command that fails before producing any leaves nothing behind)."""
    path = directory / INPUTS
    if path.is_file():
        old = json.loads(path.read_text())
        changed = sorted(k for k in {*old, *inputs} if old.get(k) != inputs.get(k))
        if changed:
            raise FmError(f"{directory} holds {what} made from other inputs ({', '.join(changed)} changed); use a new "
                          "output directory or delete it")
        return
    if record:
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, inputs)
