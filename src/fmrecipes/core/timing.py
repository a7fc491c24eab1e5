"""Timing shared by the benchmarks and the experiments: warm up, then interleaved rounds, median seconds."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


def interleaved_medians(runs: dict[str, Callable[[], object]], rounds: int,
                        device: torch.device | None = None) -> dict[str, float]:
    """Call each of ``runs`` once to warm up, then ``rounds`` times in turn; the median seconds of each.
    On CUDA the device is synchronised around every timed call."""
    def sync() -> None:
        if device is not None and device.type == "cuda":
            torch.cuda.synchronize()

    for fn in runs.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}
