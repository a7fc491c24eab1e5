"""``torch.compile`` as an option with a clean fallback: where no compiler works (no C++ compiler on a CPU, no
Triton on a GPU, an operator Inductor cannot lower), the call runs eagerly after a one-line warning."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import Any

import torch

from ..errors import warn


def compiler_available(device: torch.device) -> bool:
    """Whether Inductor has a back end here: Triton on a GPU, a C++ compiler on a CPU."""
    if device.type == "cuda":
        try:
            import triton  # noqa: F401
        except ImportError:
            return False
        return True
    return any(shutil.which(cc) for cc in ("g++", "c++", "clang++"))


class Compiled:
    """``fn`` compiled by ``torch.compile(fn, **options)`` on first call, eager from then on if compiling or the
    compiled call fails (with one warning naming ``what``). ``.compiled`` says which one ran last."""

    def __init__(self, fn: Callable[..., Any], what: str, **options: Any):
        self.fn, self.what = fn, what
        self.compiled_fn: Callable[..., Any] | None = torch.compile(fn, **options)
        self.compiled = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.compiled_fn is not None:
            try:
                return self.compiled_fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - any compiler failure means: run eagerly
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
                warn(f"torch.compile of {self.what} failed ({type(exc).__name__}: {first}); running it eagerly")
                self.compiled_fn, self.compiled = None, False
        return self.fn(*args, **kwargs)


def maybe_compile(fn: Callable[..., Any], enabled: bool, device: torch.device, what: str,
                  **options: Any) -> Callable[..., Any]:
    """``fn`` compiled (:class:`Compiled`) when ``enabled`` and a compiler exists for ``device``, else ``fn``;
    asking for compilation where none exists is a warning, not an error."""
    if not enabled:
        return fn
    if not compiler_available(device):
        warn(f"torch.compile of {what} asked for, but no compiler for {device.type} was found "
             "(a C++ compiler on CPU, Triton on GPU); running it eagerly")
        return fn
    return Compiled(fn, what, **options)
