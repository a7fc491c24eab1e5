"""Output-norm monitoring of a GPT during training (the diagnostic of arXiv 2410.16682, notes §B.6).

Every ``every`` steps (and at step 1) forward hooks record, per layer, the RMS per token of the outputs
of the QKV, Proj, FC1 and FC2 linear layers (``‖Y‖`` in the paper; diverging runs had QKV/Proj/FC2 outputs
more than 2x a converging run's), and the largest raw attention logit q·kᵀ/√d (before any cap). Between
those steps no hook is registered and attention keeps its fused kernel, so a disabled or idle monitor costs
nothing.
"""

from __future__ import annotations

from collections import defaultdict
from functools import partial

import torch
import torch.nn as nn

from .train import StepHooks

TARGETS = {"qkv": "attn.qkv", "proj": "attn.proj", "fc1": "mlp.fc1", "fc2": "mlp.fc2"}


class OutputNormMonitor(StepHooks):
    def __init__(self, every: int):
        self.every = every
        self.handles: list[torch.utils.hooks.RemovableHandle] = []
        self.sums: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)
        self.max_logit: dict[str, float] = {}

    def _rms(self, name: str, module: nn.Module, inputs, output: torch.Tensor) -> None:
        self.sums[name] += output.detach().float().pow(2).mean(-1).sqrt().mean().item()
        self.counts[name] += 1

    def _logit(self, name: str, module: nn.Module, inputs, output) -> None:
        value = module.last_max_logit.item()
        self.max_logit[name] = max(value, self.max_logit.get(name, float("-inf")))

    def before_step(self, step: int, model: nn.Module) -> None:
        if self.every <= 0 or (step % self.every and step != 1):
            return
        for i, block in enumerate(model.blocks):
            for key, path in TARGETS.items():
                hook = partial(self._rms, f"out_rms.{key}.L{i}")
                self.handles.append(block.get_submodule(path).register_forward_hook(hook))
            block.attn.track_max_logit = True
            self.handles.append(block.attn.register_forward_hook(partial(self._logit, f"max_attn_logit.L{i}")))

    def after_step(self, step: int, model: nn.Module) -> dict[str, float]:
        if not self.handles:
            return {}
        for handle in self.handles:
            handle.remove()
        self.handles.clear()
        for block in model.blocks:
            block.attn.track_max_logit = False
        record = {name: total / self.counts[name] for name, total in self.sums.items()}
        record.update(self.max_logit)
        for key in TARGETS:
            record[f"out_rms.{key}.max"] = max(v for k, v in record.items() if k.startswith(f"out_rms.{key}.L"))
        record["max_attn_logit.max"] = max(self.max_logit.values())
        self.sums.clear()
        self.counts.clear()
        self.max_logit.clear()
        return record
