"""One training loop for every recipe.

AdamW with decay / no-decay parameter groups, linear warm-up + cosine decay, gradient clipping,
gradient accumulation, bf16 autocast on GPU, DDP under torchrun, NaN/Inf detection, periodic
atomic checkpoints and exact resume.

Determinism: the examples of optimizer step ``s`` are drawn from a generator seeded by
``(seed, s)``, and the global RNG (dropout) is reseeded every step, so a run resumed from a
checkpoint replays exactly the batches and dropout masks of an uninterrupted run; the global batch is
split across ranks, so N processes see the same examples as one.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
import torch.nn as nn

from ..errors import ConfigError, FmError
from . import dist, fsdp
from .causal_lm import lm_loss
from .checkpoint import (
    latest_checkpoint,
    load_model,
    restore_latest,
    save_checkpoint,
    unwrap,
)
from .compile import maybe_compile
from .loop import StepLoop
from .metrics import plot_curves, read_jsonl
from .seeding import stream_seed


@dataclass
class TrainConfig:
    steps: int = 200
    batch_size: int = 16  # sequences per optimizer step, over all processes
    micro_batch_size: int = 16  # sequences per forward/backward on one process
    lr: float = 1e-3
    min_lr_ratio: float = 0.1  # cosine decays to lr · min_lr_ratio
    warmup_steps: int = 20
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float | None = 1.0
    seed: int = 0
    log_every: int = 10
    eval_every: int = 50
    eval_batches: int = 4
    ckpt_every: int = 50
    keep_checkpoints: int = 2
    # "random": each step draws its examples independently (with replacement); "epochs": steps walk
    # through a fresh permutation of the data each epoch (a preference "epoch" sees every pair once).
    sampling: Literal["random", "epochs"] = "random"
    # Under torchrun: "ddp" replicates the model on every process; "fsdp" shards weights, gradients and optimizer
    # state over the processes (FSDP2, per transformer block), for models larger than one device's memory.
    parallel: Literal["ddp", "fsdp"] = "ddp"

    def validate(self) -> None:
        for name in ("steps", "batch_size", "micro_batch_size", "log_every", "eval_every", "ckpt_every",
                     "eval_batches", "keep_checkpoints"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"train.{name}={getattr(self, name)} must be positive")
        if self.lr <= 0:
            raise ConfigError(f"train.lr={self.lr} must be positive")
        if self.warmup_steps < 0:
            raise ConfigError(f"train.warmup_steps={self.warmup_steps} must be >= 0")
        if self.batch_size % min(self.micro_batch_size, self.batch_size):
            raise ConfigError(f"train.batch_size={self.batch_size} must be a multiple of train.micro_batch_size="
                              f"{self.micro_batch_size}")


@dataclass
class TrainResult:
    step: int
    val_loss: float | None
    resumed_from: int | None
    checkpoint: Path | None


class StepHooks:
    """Optional per-step hooks: ``before_step`` runs before the step's forward passes, ``after_step``
    after the optimizer update and returns extra metrics to log (the stability monitor uses both)."""

    def before_step(self, step: int, model: nn.Module) -> None:
        pass

    def after_step(self, step: int, model: nn.Module) -> dict[str, float]:
        return {}


class Dataset(Protocol):
    def __len__(self) -> int: ...

    def batch(self, indices) -> Any: ...


def split_loss(out: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """A loss function may return the loss alone or ``(loss, metrics)`` (TRL style: rewards, margins ...)."""
    return out if isinstance(out, tuple) else (out, {})


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to ``lr`` over ``warmup_steps``, then cosine decay to ``lr·min_lr_ratio``."""
    return cfg.lr * cosine_factor(step, cfg.steps, cfg.warmup_steps, cfg.min_lr_ratio)


def cosine_factor(step: int, steps: int, warmup_steps: int, min_lr_ratio: float) -> float:
    """The learning rate's multiplier at ``step`` of ``steps``: linear from 0 to 1 over ``warmup_steps``, then a
    cosine from 1 down to ``min_lr_ratio`` at the last step."""
    if warmup_steps and step <= warmup_steps:
        return step / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, steps - warmup_steps))
    return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weight decay on matrices (linear and embedding weights); none on biases and norm gains."""
    decay, no_decay, seen = [], [], set()
    for p in model.parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (decay if p.dim() >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    return torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                             eps=cfg.eps)


def _to(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: _to(v, device) for k, v in batch.items()}
    return batch.to(device, non_blocking=True) if isinstance(batch, torch.Tensor) else batch


def _autocast(env: dist.DistEnv):
    if env.bf16:
        return torch.autocast(device_type=env.device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def example_generator(index: int) -> torch.Generator:
    """The random stream of example ``index`` in the current step, for datasets and losses that draw per example
    (augmentations, masks, diffusion noise): seeded from the step's seed (:func:`train` calls ``torch.manual_seed``
    with it before every step, the same on every process) and the index, so an example gets the same draws
    whichever process and micro-batch it lands in (N processes train as one does) and a resumed run replays
    them."""
    return torch.Generator().manual_seed(stream_seed(torch.initial_seed(), index) % 2**63)


def step_indices(step: int, cfg: TrainConfig, n: int, env: dist.DistEnv) -> torch.Tensor:
    """This rank's example indices for optimizer step ``step`` (a slice of the global batch)."""
    if cfg.sampling == "epochs":
        positions = torch.arange((step - 1) * cfg.batch_size, step * cfg.batch_size)
        global_idx = torch.empty(cfg.batch_size, dtype=torch.long)
        for epoch in positions.div(n, rounding_mode="floor").unique().tolist():
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(stream_seed(cfg.seed, epoch)))
            here = positions // n == epoch
            global_idx[here] = perm[positions[here] % n]
    else:
        g = torch.Generator().manual_seed(stream_seed(cfg.seed, step))
        global_idx = torch.randint(n, (cfg.batch_size,), generator=g)
    per_rank = cfg.batch_size // env.world_size
    return global_idx[env.rank * per_rank:(env.rank + 1) * per_rank]


@torch.no_grad()
def evaluate(model: nn.Module, data: Dataset, cfg: TrainConfig, env: dist.DistEnv,
             loss_fn: Callable = lm_loss) -> float:
    """Mean loss over a fixed validation subset (the first ``eval_batches`` micro-batches)."""
    was_training = model.training
    model.eval()
    n = min(len(data), cfg.eval_batches * cfg.micro_batch_size)
    mine = list(range(env.rank, n, env.world_size))
    total = torch.zeros(2, dtype=torch.float64, device=env.device)
    for i in range(0, len(mine), cfg.micro_batch_size):
        chunk = mine[i:i + cfg.micro_batch_size]
        with _autocast(env):
            loss, _ = split_loss(loss_fn(model, _to(data.batch(chunk), env.device)))
        total += torch.stack([loss.double() * len(chunk), torch.tensor(float(len(chunk)), dtype=torch.float64,
                                                                      device=env.device)])
    total = dist.all_reduce_sum(total, env)
    model.train(was_training)
    return (total[0] / total[1]).item()


def _micro_batches(cfg: TrainConfig, env: dist.DistEnv) -> tuple[int, int]:
    """(micro-batch size, accumulation steps) that make up the global batch over ``env.world_size`` processes."""
    micro = min(cfg.micro_batch_size, cfg.batch_size // env.world_size)
    if micro < 1 or cfg.batch_size % (micro * env.world_size):
        raise ConfigError(f"train.batch_size={cfg.batch_size} must be a multiple of train.micro_batch_size="
                          f"{micro} x {env.world_size} processes")
    return micro, cfg.batch_size // (micro * env.world_size)


def _sharded(cfg: TrainConfig, env: dist.DistEnv) -> bool:
    """Whether this run shards its model (``train.parallel=fsdp`` under torchrun)."""
    return cfg.parallel == "fsdp" and env.distributed


def _setup(model: nn.Module, cfg: TrainConfig, run_dir: Path, env: dist.DistEnv) -> tuple[nn.Module, Any, int | None]:
    """The model to run forward (DDP-wrapped, sharded or itself), its optimizer, restored with the weights from
    ``run_dir``'s latest checkpoint, and that checkpoint's step (None without one). A sharded model loads the
    whole weights first, then shards them, then takes its shard of the optimizer state. A checkpoint written in
    the other mode resumes too (its optimizer state is converted by parameter name)."""
    sharded = _sharded(cfg, env)
    if not sharded:
        model.to(env.device)
    optimizer = make_optimizer(model, cfg)

    def restore(ckpt: Path, state: dict[str, Any]) -> None:
        load_model(ckpt, into=model)
        if fsdp.OPTIMIZER_KEY in state and not sharded:
            fsdp.load_optimizer_state(model, optimizer, state[fsdp.OPTIMIZER_KEY])
        elif fsdp.OPTIMIZER_KEY not in state:
            optimizer.load_state_dict(state["optimizer"])
            if sharded:  # a replicated run's state, by position: by name, before sharding
                state[fsdp.OPTIMIZER_KEY] = fsdp.named_optimizer_state(model, optimizer)

    state = restore_latest(run_dir, restore)
    step = None if state is None else int(state["step"])
    if not sharded:
        return dist.wrap(model, env), optimizer, step
    fsdp.shard(model)
    optimizer = make_optimizer(model, cfg)  # over the shards
    if state is not None:
        fsdp.load_optimizer_state(model, optimizer, state[fsdp.OPTIMIZER_KEY])
    return model, optimizer, step


def _save(run_dir: Path, step: int, model: nn.Module, optimizer: torch.optim.Optimizer, cfg: TrainConfig,
          env: dist.DistEnv, tokenizer: Any) -> None:
    """A checkpoint of ``step``, written by the main process (a sharded model is gathered by all first)."""
    if _sharded(cfg, env):
        weights, opt_state = fsdp.full_weights(model), fsdp.full_optimizer_state(model, optimizer)
        if env.is_main:
            save_checkpoint(run_dir, step, model, None, {"seed": cfg.seed, fsdp.OPTIMIZER_KEY: opt_state},
                            keep=cfg.keep_checkpoints, tokenizer=tokenizer, weights=weights)
    elif env.is_main:
        save_checkpoint(run_dir, step, model, optimizer, {"seed": cfg.seed}, keep=cfg.keep_checkpoints,
                        tokenizer=tokenizer)
    dist.barrier(env)


@dataclass
class _Step:
    """What one optimizer step measured."""

    loss: float
    grad_norm: float
    lr: float
    extra: dict[str, torch.Tensor]


def _optimizer_step(step: int, model: nn.Module, ddp_model: nn.Module, optimizer: torch.optim.Optimizer,
                    train_data: Dataset, cfg: TrainConfig, env: dist.DistEnv, loss_fn: Callable, hooks: StepHooks,
                    loop: StepLoop) -> _Step:
    """Step ``step`` (the loop has seeded its dropout): its learning rate, its seeded examples, accumulated
    forward/backward passes, clipping, and the update, unless the loss or gradient is NaN/Inf
    (:class:`TrainingDiverged`)."""
    micro, accum = _micro_batches(cfg, env)
    lr = lr_at(step, cfg)
    for group in optimizer.param_groups:
        group["lr"] = lr
    idx = step_indices(step, cfg, len(train_data), env)
    hooks.before_step(step, model)
    loss_sum = torch.zeros((), device=env.device)
    extra_sum: dict[str, torch.Tensor] = {}
    for m in range(accum):
        chunk = idx[m * micro:(m + 1) * micro]
        last = m == accum - 1
        if hasattr(ddp_model, "set_requires_gradient_sync"):  # sharded: reduce gradients on the last micro-batch
            ddp_model.set_requires_gradient_sync(last)
        sync = ddp_model.no_sync() if env.distributed and not last and hasattr(ddp_model, "no_sync") else \
            contextlib.nullcontext()
        with sync:
            with _autocast(env):
                loss, extra = split_loss(loss_fn(ddp_model, _to(train_data.batch(chunk), env.device)))
            (loss / accum).backward()
        loss_sum += loss.detach() / accum
        for k, v in extra.items():
            extra_sum[k] = extra_sum.get(k, 0.0) + v.detach().float().mean() / accum
    loss_value = dist.all_reduce_mean(loss_sum, env).item()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip or float("inf"))
    grad_norm = (norm.full_tensor() if hasattr(norm, "full_tensor") else norm).item()  # sharded: a DTensor
    loop.check_finite(step, loss_value)
    loop.check_finite(step, grad_norm)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return _Step(loss_value, grad_norm, lr, extra_sum)


class _Throughput:
    """Tokens per second since the last reading."""

    def __init__(self) -> None:
        self.since, self.tokens = time.perf_counter(), 0

    def add(self, tokens: int) -> None:
        self.tokens += tokens

    def read(self) -> float:
        now = time.perf_counter()
        rate = self.tokens / max(now - self.since, 1e-9)
        self.since, self.tokens = now, 0
        return rate


def train(model: nn.Module, train_data: Dataset, val_data: Dataset | None, cfg: TrainConfig,
          run_dir: str | Path, env: dist.DistEnv | None = None, loss_fn: Callable = lm_loss,
          tokens_per_example: int = 0,
          hooks: StepHooks | None = None, tokenizer: Any = None) -> TrainResult:
    """Train ``model`` in ``run_dir`` for ``cfg.steps`` optimizer steps, resuming if a checkpoint exists; after
    the loop, plot ``loss_curve.png``.

    ``env`` is the run environment an entry point built with :func:`~fmrecipes.core.dist.setup`; without one the
    loop runs in this process alone (:func:`~fmrecipes.core.dist.single_process`, no process group). ``hooks``
    (a :class:`StepHooks`) may observe each step and add metrics to its record. ``tokenizer`` (of a language
    model) is saved in every checkpoint, so each one carries what reads it.
    Raises :class:`TrainingDiverged` when the loss becomes NaN/Inf, before applying that update.
    """
    env = env or dist.single_process()
    hooks = hooks or StepHooks()
    run_dir = Path(run_dir)
    _micro_batches(cfg, env)  # a batch that does not split is an error before any work
    if len(train_data) == 0:
        raise FmError(f"{run_dir}: the training set is empty")
    caller = model  # a sharded run trains a copy and loads its whole weights back into the caller's model
    model = copy.deepcopy(model) if _sharded(cfg, env) else model
    ddp_model, optimizer, resumed = _setup(model, cfg, run_dir, env)
    # run.compile=true: the loss with the model's forward (and so its backward) through torch.compile
    loss_fn = maybe_compile(loss_fn, env.compile is True, env.device, "the training loss")
    throughput, val_loss = _Throughput(), None
    ddp_model.train()
    with StepLoop(run_dir, cfg.steps, resumed or 0, resumed is not None, cfg.seed, env,
                  run_dir / "tensorboard" if env.tensorboard else None) as loop:
        for step in loop:
            done = _optimizer_step(step, model, ddp_model, optimizer, train_data, cfg, env, loss_fn, hooks, loop)
            throughput.add(cfg.batch_size * tokens_per_example)
            record: dict[str, Any] = dict(hooks.after_step(step, model))
            postfix = {}
            if loop.due(step, cfg.log_every) or step == 1:
                tps = throughput.read()
                record.update({"loss": done.loss, "lr": done.lr, "grad_norm": done.grad_norm, "tokens_per_s": tps})
                record.update({k: dist.all_reduce_mean(v, env).item() for k, v in done.extra.items()})
                postfix = {"loss": f"{done.loss:.3f}", "tok_s": f"{tps:,.0f}"}
            if val_data is not None and loop.due(step, cfg.eval_every):
                val_loss = record["val_loss"] = evaluate(ddp_model, val_data, cfg, env, loss_fn)
                loop.check_finite(step, val_loss)
            if record:
                loop.log({"step": step, **record}, **postfix)
            stop = loop.stop_requested(env)
            if loop.due(step, cfg.ckpt_every) or stop:
                _save(run_dir, step, model, optimizer, cfg, env, tokenizer)
            if stop:
                raise loop.preempted(step)
    if val_data is not None and val_loss is None:  # already complete: report the final validation loss
        val_loss = evaluate(ddp_model, val_data, cfg, env, loss_fn)
    if model is not caller:
        fsdp.copy_back(model, caller.to(env.device))
    if env.is_main:
        plot_curves(read_jsonl(run_dir / "metrics.jsonl"), ["loss", "val_loss"], run_dir / "loss_curve.png",
                    title=f"{run_dir.name}: loss")
    return TrainResult(cfg.steps, val_loss, resumed, latest_checkpoint(run_dir))


__all__ = [
    "StepHooks",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "lr_at",
    "make_optimizer",
    "param_groups",
    "train",
    "unwrap",
]
