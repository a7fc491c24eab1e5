"""One run per output directory: ``OUT/.fmrecipes.lock`` names the process that holds it (PID, host, command).

A second command into the same directory gets a one-line error naming the holder. A lock left by a process that
no longer exists on this host (killed with SIGKILL, a crashed node) is taken over with a warning. Under torchrun
only rank 0 takes it. The lock is created with ``O_CREAT | O_EXCL``, so two processes racing for a directory
cannot both win.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import FmError, warn
from .fileio import ensure_dir

LOCK = ".fmrecipes.lock"


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (one owned by another user raises PermissionError: it does)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _holder(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _take(path: Path) -> bool:
    """Create the lock file with this process's details; False if it exists."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        json.dump({"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv)}, f)
    return True


def acquire(out_dir: str | Path) -> Path:
    """Take ``out_dir``'s lock (creating the directory); a one-line error while another live process holds it."""
    path = ensure_dir(out_dir) / LOCK
    for _ in range(2):
        if _take(path):
            return path
        holder = _holder(path) or {}
        pid, host = holder.get("pid"), holder.get("host")
        here = host == socket.gethostname()
        if here and pid == os.getpid():
            raise FmError(f"output directory {out_dir} is already in use by this process")
        if here and isinstance(pid, int) and not _alive(pid):
            warn(f"{out_dir}: taking over the lock of process {pid} on {host}, which no longer runs")
            path.unlink(missing_ok=True)
            continue
        raise FmError(f"output directory {out_dir} is in use by process {pid} on {host} "
                      f"({holder.get('command', 'unknown command')}); wait for it to finish or choose another --out "
                      f"(if that process is gone, delete {path})")
    raise FmError(f"output directory {out_dir}: could not take the lock {path}")


def release(path: Path) -> None:
    """Drop a lock this process holds."""
    holder = _holder(path)
    if holder and holder.get("pid") == os.getpid():
        path.unlink(missing_ok=True)


@contextmanager
def run_lock(out_dir: str | Path, is_main: bool = True) -> Iterator[None]:
    """Hold ``out_dir``'s lock for the block (the main process only; the others run under rank 0's lock)."""
    path = acquire(out_dir) if is_main else None
    try:
        yield
    finally:
        if path is not None:
            release(path)
