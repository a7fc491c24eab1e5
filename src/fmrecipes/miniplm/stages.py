"""Stages 1 and 4: train an LM on a set of instances (reference, teacher, students, with optional online
Vanilla KD), and evaluate a student on the held-out split, overall and per domain."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from ..core import dist
from ..core.causal_lm import causal_lm, lm_loss
from ..core.fileio import ensure_dir
from ..core.gpt import GPT, GPTConfig
from ..core.hf import llama_like
from ..core.train import TrainConfig, TrainResult, train
from .losses import eos_input_mask, vanilla_kd_loss
from .pool import Subset
from .score import score_batch


def sized(model_cfg: GPTConfig, vocab_size: int, seq_len: int) -> GPTConfig:
    return dataclasses.replace(model_cfg, vocab_size=vocab_size, seq_len=seq_len)


def kd_loss_fn(teacher: nn.Module, kd_ratio: float, temperature: float, eos_id: int | None = None):
    """A ``loss_fn`` for the core loop: online Vanilla KD against a frozen teacher, skipping positions whose
    input is ``eos_id`` (None: none)."""
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)

    def loss(model: nn.Module, batch) -> torch.Tensor:
        x, y = batch
        with torch.no_grad():
            t = causal_lm(teacher).logits(x)
        return vanilla_kd_loss(causal_lm(model).logits(x), t, y, kd_ratio, temperature, eos_input_mask(x, eos_id))

    return loss


def train_model(model_cfg: GPTConfig | None, train_cfg: TrainConfig, data, val, run_dir: Path,
                env: dist.DistEnv, teacher: nn.Module | None = None, kd_ratio: float = 0.5,
                temperature: float = 1.0, hf_llama: bool = False,
                eos_id: int | None = None, tokenizer: Any = None) -> tuple[nn.Module, TrainResult]:
    """Train a fresh GPT (or a Llama of the same shape) on ``data`` in ``env``; resumes/finishes like
    ``lm train``; its checkpoints carry ``tokenizer`` (the corpus's). A :class:`Subset` of the corpus leaves its
    instance indices in ``run_dir/instances.npy``."""
    if isinstance(data, Subset) and env.is_main:  # which instances of the corpus it read, for leak checks
        np.save(ensure_dir(run_dir) / "instances.npy", data.indices)
    torch.manual_seed(train_cfg.seed)
    model = llama_like(model_cfg) if hf_llama else GPT(model_cfg)
    loss = kd_loss_fn(teacher.to(env.device), kd_ratio, temperature, eos_id) if teacher is not None else lm_loss
    result = train(model, data, val, train_cfg, run_dir, env, loss_fn=loss, tokens_per_example=model_cfg.seq_len,
                   tokenizer=tokenizer)
    return model, result


def compute_matched_steps(steps: int, n_student: int, n_teacher: int) -> int:
    """Vanilla KD's step budget at equal training FLOPs: steps·3N_s/(3N_s + N_t) (the paper's rule)."""
    return max(1, round(steps * 3 * n_student / (3 * n_student + n_teacher)))


def compute_matched(train_cfg: TrainConfig, student_cfg: GPTConfig, n_teacher: int) -> TrainConfig:
    """``train_cfg`` with its steps cut to Vanilla KD's FLOPs-matched budget for this student and teacher."""
    steps = compute_matched_steps(train_cfg.steps, num_params(GPT(student_cfg)), n_teacher)
    return dataclasses.replace(train_cfg, steps=steps)


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


@torch.inference_mode()
def val_losses(model: nn.Module, val, domains: list[str], batch_size: int, env: dist.DistEnv,
               limit: int | None = None) -> dict[str, float]:
    """Mean per-instance validation loss over ``limit`` evenly spaced instances (all when None), overall
    ('all'), per domain, and the domain-balanced mean of the per-domain losses ('balanced': selection shifts the
    domain mix, which the pooled mean would reward or penalise); in the run's precision (``env.bf16``)."""
    n = len(val) if limit is None else min(limit, len(val))
    idx = np.unique(np.linspace(0, len(val) - 1, n).round().astype(np.int64))
    per = np.concatenate([score_batch(model, *val.batch(idx[s:s + batch_size]), env.device, bf16=env.bf16)
                          for s in range(0, len(idx), batch_size)])
    by_domain: dict[str, list[float]] = defaultdict(list)
    for v, d in zip(per, [domains[i] for i in idx]):
        by_domain[d].append(float(v))
    out = {"all": float(per.mean())}
    out.update({d: float(np.mean(v)) for d, v in sorted(by_domain.items())})
    out["balanced"] = float(np.mean([np.mean(v) for v in by_domain.values()]))
    return out
