"""The scaffolding every training loop shares (:func:`fmrecipes.core.train.train`, sim's distillation): the
metrics log that a resumed run appends to, the progress bar, the per-step seed, the NaN/Inf stop, the
logging / checkpoint cadence and preemption. What a step does is the caller's.

Preemption: cluster schedulers send SIGTERM (SLURM can send SIGUSR1 ahead of time) before they kill a job. While
the loop runs, either signal only raises a flag; the caller finishes its step, writes a checkpoint and stops
with :class:`~fmrecipes.errors.Preempted` (exit code 75); the same command resumes. Under torchrun the flag is
shared (all-reduced each step), so every process stops after the same step."""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ..errors import Preempted, TrainingDiverged
from . import dist
from .checkpoint import latest_checkpoint
from .metrics import MetricsWriter
from .seeding import stream_seed

PREEMPT_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class StepLoop:
    """Steps ``start + 1 .. total`` of a run in ``run_dir`` (``resumed``: ``start`` came from a checkpoint).

    Iterating reseeds the global RNG from ``(seed, step)`` before each step (dropout, noise: a resumed run replays
    the same draws) and advances the bar after it. The main process alone writes ``metrics.jsonl`` (and
    TensorBoard when ``tensorboard_dir`` is given). Use as a context manager: the bar and the log are closed
    however the loop ends."""

    def __init__(self, run_dir: Path, total: int, start: int, resumed: bool, seed: int, env: dist.DistEnv,
                 tensorboard_dir: Path | None = None):
        self.run_dir, self.total, self.start, self.seed = run_dir, total, start, seed
        self.signal: str | None = None  # the name of a preemption signal received while the loop ran
        self._previous: dict[signal.Signals, Any] = {}
        self.metrics = MetricsWriter(run_dir / "metrics.jsonl", resume_step=start if resumed else None,
                                     tensorboard_dir=tensorboard_dir, enabled=env.is_main)
        self.bar = tqdm(total=total, initial=start, disable=not (env.progress and env.is_main), desc=run_dir.name,
                        dynamic_ncols=True, leave=False)

    def stop_requested(self, env: dist.DistEnv) -> bool:
        """Whether any process received SIGTERM / SIGUSR1 (then every process gets True after the same step)."""
        flag = self.signal is not None
        if env.distributed:
            flag = bool(dist.all_reduce_sum(torch.tensor(float(flag), device=env.device), env).item() > 0)
        return flag

    def preempted(self, step: int) -> Preempted:
        """The error that ends a preempted run after ``step`` (its checkpoint written)."""
        return Preempted(self.signal or "a signal on another process", step, self._last_checkpoint())

    def _last_checkpoint(self) -> str | None:
        ckpt = latest_checkpoint(self.run_dir)
        return None if ckpt is None else str(ckpt)

    def _on_signal(self, signum: int, frame: object) -> None:
        self.signal = signal.Signals(signum).name

    def __iter__(self) -> Iterator[int]:
        for step in range(self.start + 1, self.total + 1):
            torch.manual_seed(stream_seed(self.seed, step))
            yield step
            self.bar.update(1)

    def due(self, step: int, every: int) -> bool:
        """Whether ``step`` is on an ``every``-step cadence (the last step always is)."""
        return step % every == 0 or step == self.total

    def check_finite(self, step: int, value: float) -> None:
        """:class:`TrainingDiverged` (naming the last good checkpoint) when ``value`` is NaN/Inf."""
        if not math.isfinite(value):
            raise TrainingDiverged(step, value, self._last_checkpoint())

    def log(self, record: dict[str, Any], **postfix: str) -> None:
        """Append ``record`` to the metrics log and show ``postfix`` on the bar."""
        self.metrics.log(record)
        if postfix:
            self.bar.set_postfix(**postfix)

    def __enter__(self) -> StepLoop:
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            for sig in PREEMPT_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self.bar.close()
        self.metrics.close()
