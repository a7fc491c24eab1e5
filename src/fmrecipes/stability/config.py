"""Configuration of the stability LR sweep."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.dist import RunConfig
from ..core.gpt import GPTConfig
from ..core.train import TrainConfig
from ..data.corpora import CorpusConfig
from ..errors import ConfigError
from .variants import VARIANTS


@dataclass
class DivergenceRule:
    """When a run counts as diverged (the paper reads it off the validation-loss curve; no threshold is given).

    A run diverged if its loss went NaN/Inf, if it ends above its initial validation loss, if its training loss
    spiked and did not recover (the last logged training loss more than ``spike`` nats above the lowest one
    logged before it; None turns this off), or if, at a rate above the variant's best one, its final validation
    loss exceeds that best by more than ``margin`` nats.
    """

    margin: float = 0.5
    above_initial: bool = True
    spike: float | None = 1.0


@dataclass
class StabilityConfig:
    out: str = "runs/stability"
    model: GPTConfig = field(default_factory=GPTConfig)  # the baseline; variants switch methods on
    data: CorpusConfig = field(default_factory=CorpusConfig)
    train: TrainConfig = field(default_factory=TrainConfig)  # train.lr is replaced by each grid value
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    lrs: list[float] = field(default_factory=lambda: [3e-3, 1e-2, 3e-2, 1e-1])
    ppl_lr: float = 3e-3  # the fixed moderate rate at which perplexity is compared
    seeds: list[int] = field(default_factory=lambda: [0])
    divergence: DivergenceRule = field(default_factory=DivergenceRule)
    monitor_every: int = 10  # output-norm monitoring period in steps (0 = off)
    workers: int = 2  # runs trained in parallel processes
    threads_per_worker: int = 1
    # bf16 autocast, the paper's precision (CPUs run it too); run.precision=fp32 is the option
    run: RunConfig = field(default_factory=lambda: RunConfig(precision="bf16"))

    def validate(self) -> None:
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown:
            raise ConfigError(f"variants: unknown {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
        if not self.lrs or any(lr <= 0 for lr in self.lrs):
            raise ConfigError(f"lrs={self.lrs} must be a non-empty list of positive learning rates")
        if not self.seeds:
            raise ConfigError("seeds must list at least one seed")
        if self.workers < 1 or self.threads_per_worker < 1:
            raise ConfigError("workers and threads_per_worker must be >= 1")
