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


def bf16_cost(model: torch.nn.Module, ids: torch.Tensor, device: torch.device, rounds: int = 3) -> float:
    """What bf16 autocast costs on this machine: the median seconds of a training step (forward with the fused
    loss, backward) of ``model`` on ``ids`` under bf16 autocast over the same step in fp32 (> 1: bf16 is slower,
    as on CPUs without fast bf16 matrix units). ``model``'s gradients are cleared after."""
    from .causal_lm import lm_loss

    ids = ids.to(device)

    def step(bf16: bool) -> Callable[[], None]:
        def run() -> None:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = lm_loss(model, (ids[:, :-1], ids[:, 1:]))
            loss.backward()
            model.zero_grad(set_to_none=True)
        return run

    t = interleaved_medians({"bf16": step(True), "fp32": step(False)}, rounds, device)
    return t["bf16"] / t["fp32"]
