"""Configuration of ``fmrecipes lm``."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core.dist import RunConfig
from ..core.gpt import GPTConfig
from ..core.train import TrainConfig
from ..data.corpora import CorpusConfig


@dataclass
class LMConfig:
    out: str = "runs/lm"
    model: GPTConfig = field(default_factory=GPTConfig)
    # A local Hugging Face causal-LM directory (config.json + weights + tokenizer). When set it is
    # trained instead of `model`, with its own tokenizer.
    hf_model: str | None = None
    data: CorpusConfig = field(default_factory=CorpusConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    run: RunConfig = field(default_factory=RunConfig)
