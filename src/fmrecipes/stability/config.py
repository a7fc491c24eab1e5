"""Configuration of the stability LR search."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.dist import RunConfig
from ..core.gpt import GPTConfig
from ..core.train import TrainConfig
from ..data.corpora import CorpusConfig
from ..errors import ConfigError
from .search import DivergenceRule, LRSearch
from .variants import VARIANTS


@dataclass
class StabilityConfig:
    out: str = "runs/stability"
    model: GPTConfig = field(default_factory=GPTConfig)  # the baseline; variants switch methods on
    data: CorpusConfig = field(default_factory=CorpusConfig)
    train: TrainConfig = field(default_factory=TrainConfig)  # train.lr is replaced by each searched rate
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    search: LRSearch = field(default_factory=LRSearch)
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
        self.search.validate()
        if self.ppl_lr <= 0:
            raise ConfigError(f"ppl_lr={self.ppl_lr} must be a positive learning rate")
        if not self.seeds:
            raise ConfigError("seeds must list at least one seed")
        if self.workers < 1 or self.threads_per_worker < 1:
            raise ConfigError("workers and threads_per_worker must be >= 1")
