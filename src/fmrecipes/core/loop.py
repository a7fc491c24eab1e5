"""The scaffolding every training loop shares (:func:`fmrecipes.core.train.train`, sim's distillation): the
metrics log that a resumed run appends to, the progress bar, the per-step seed, the NaN/Inf stop and the
logging / checkpoint cadence. What a step does is the caller's."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ..errors import TrainingDiverged
from . import dist
from .checkpoint import latest_checkpoint
from .metrics import MetricsWriter
from .seeding import stream_seed


class StepLoop:
    """Steps ``start + 1 .. total`` of a run in ``run_dir`` (``resumed``: ``start`` came from a checkpoint).

    Iterating reseeds the global RNG from ``(seed, step)`` before each step (dropout, noise: a resumed run replays
    the same draws) and advances the bar after it. The main process alone writes ``metrics.jsonl`` (and
    TensorBoard when ``tensorboard_dir`` is given). Use as a context manager: the bar and the log are closed
    however the loop ends."""

    def __init__(self, run_dir: Path, total: int, start: int, resumed: bool, seed: int, env: dist.DistEnv,
                 tensorboard_dir: Path | None = None):
        self.run_dir, self.total, self.start, self.seed = run_dir, total, start, seed
        self.metrics = MetricsWriter(run_dir / "metrics.jsonl", resume_step=start if resumed else None,
                                     tensorboard_dir=tensorboard_dir, enabled=env.is_main)
        self.bar = tqdm(total=total, initial=start, disable=not (env.progress and env.is_main), desc=run_dir.name,
                        dynamic_ncols=True, leave=False)

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
            raise TrainingDiverged(step, value, str(latest_checkpoint(self.run_dir) or "") or None)

    def log(self, record: dict[str, Any], **postfix: str) -> None:
        """Append ``record`` to the metrics log and show ``postfix`` on the bar."""
        self.metrics.log(record)
        if postfix:
            self.bar.set_postfix(**postfix)

    def __enter__(self) -> StepLoop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()
        self.metrics.close()
