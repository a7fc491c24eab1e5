"""The run environment: torchrun / torch.distributed (gloo on CPU, nccl on GPU), the device, and the runtime
settings of a config's ``run:`` section, built once at the entry point and passed down. Models know nothing of
this."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.distributed as dist
import torch.nn as nn

from ..errors import ConfigError


@dataclass
class RunConfig:
    """The ``run:`` section of every config: where and how to run, not what to train."""

    device: str = "auto"  # auto: CUDA when available (one GPU per torchrun process), else the CPU
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 autocast on GPU, fp32 on CPU
    progress: bool = True  # progress bars
    tensorboard: bool = False  # mirror training metrics to TensorBoard (needs the tensorboard package)
    # torch.compile (Inductor) the model's forward and backward in training and the scoring forward; auto:
    # scoring pools of 8,192+ instances only. Falls back to eager, with a warning, where no compiler works.
    compile: bool | Literal["auto"] = "auto"


@dataclass(frozen=True)
class DistEnv:
    """This process's place in the run (rank, device) and the run's settings (its config's ``run:`` section)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    run: RunConfig = field(default_factory=RunConfig)

    @property
    def precision(self) -> str:
        return self.run.precision

    @property
    def progress(self) -> bool:
        return self.run.progress

    @property
    def tensorboard(self) -> bool:
        return self.run.tensorboard

    @property
    def compile(self) -> bool | str:
        return self.run.compile

    @property
    def bf16(self) -> bool:
        """Whether training runs in bf16 autocast: ``precision`` bf16, or auto on a GPU."""
        return self.precision == "bf16" or (self.precision == "auto" and self.device.type == "cuda")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` picks CUDA when available (one GPU per torchrun process), else the CPU; a device that does not
    exist here is a one-line error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"run.device={name} but CUDA is not available here; use run.device=cpu or auto")
    if name == "cuda":
        return torch.device("cuda", local_rank)
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"run.device={name!r} is not a device; use auto, cpu, cuda or cuda:N") from None


def single_process(run: RunConfig | None = None) -> DistEnv:
    """This process alone, with ``run``'s settings (defaults if None): no process group is joined, even under
    torchrun. What a library call runs in when it is given no environment."""
    run = run or RunConfig()
    return DistEnv(device=resolve_device(run.device), run=run)


def setup(run: RunConfig | None = None) -> DistEnv:
    """The environment of ``run`` (default settings if None), built once at an entry point: joins the process
    group that torchrun describes in the environment (no-op for one process)."""
    run = run or RunConfig()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(run.device, local)
    if world > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistEnv(rank, world, local, dev, run)


def wrap(model: nn.Module, env: DistEnv) -> nn.Module:
    """DDP-wrap a model from outside (torchtitan style) when running under torchrun."""
    if not env.distributed:
        return model
    ids = [env.device.index] if env.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def all_reduce_mean(t: torch.Tensor, env: DistEnv) -> torch.Tensor:
    if env.distributed:
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        t /= env.world_size
    return t


def all_reduce_sum(t: torch.Tensor, env: DistEnv) -> torch.Tensor:
    if env.distributed:
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier(env: DistEnv) -> None:
    if env.distributed:
        dist.barrier()


def broadcast_object(obj, env: DistEnv):
    """Rank 0's ``obj`` on every rank."""
    if not env.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def teardown(env: DistEnv) -> None:
    """Leave the process group. After a successful run the ranks leave together (a barrier first: a rank that
    destroyed its group while another still had gloo work in flight aborted once under load, "terminate called
    without an active exception"); while an exception propagates (called from ``finally``) there is no barrier,
    which the other ranks might never reach: the rank leaves and torchrun stops the rest."""
    if env.distributed and dist.is_initialized():
        if sys.exc_info()[0] is None:
            dist.barrier()
        dist.destroy_process_group()
