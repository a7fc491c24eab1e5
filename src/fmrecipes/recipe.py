"""The recipe contract: a :class:`Recipe` spec per package, and running its comparison over seeds.

A recipe package declares ``RECIPE = Recipe(...)`` in its ``__init__``: its name, paper, Config class, the
function that runs one replicate of its comparison, its claims, the paper's numbers and its extra CLI verbs.
Everything generic (the ``run`` verb, ``reproduce``, seeds, verdicts, ``summary.json``) is built from the spec.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from . import config as configlib
from .claims import Claim, aggregate, judge
from .core import dist
from .core.dist import DistEnv
from .core.fileio import atomic_write_json, atomic_write_text, ensure_dir
from .core.runlock import run_lock
from .errors import ConfigError

SUMMARY = "summary.json"  # the one summary file name: OUT/summary.json, and OUT/seed<k>/summary.json per replicate


@dataclass(frozen=True)
class ReportTable:
    """A table a recipe declares for its report: one row per entity, one column per metric of ``metrics``; the
    summary key ``<metric>.<entity>`` fills a cell (the entity may hold dots: ``fd.teacher.nfe35``). ``paper`` maps
    a metric to the name of the paper's numbers beside it (``paper.<name>.<entity>``; default: the metric's).
    ``entity_prefix`` keeps the rows whose entity starts with it (a metric name other tables share, such as
    ``params``, then shows only this table's entities)."""

    title: str
    metrics: tuple[str, ...]
    paper: Mapping[str, str] = field(default_factory=dict)
    entity_prefix: str = ""


@dataclass(frozen=True)
class Recipe:
    """One recipe: what ``fmrecipes <name> run`` and ``fmrecipes reproduce <name>`` need."""

    name: str
    paper: str                      # title and arXiv id
    description: str                # one line
    config: type                    # the Config dataclass; it has ``out``, ``seeds``, ``run`` and ``validate()``
    # one replicate: (a config whose seeds == [s], the run environment built from its ``run:`` section) -> metrics
    run_experiment: Callable[[Any, DistEnv], dict[str, Any]]
    claims: tuple[Claim, ...]
    paper_numbers: Mapping[str, Any] = field(default_factory=dict)  # ``paper.<key>``: shown beside ``<key>``
    register_cli: Callable[[Any], None] | None = None  # adds recipe-specific verbs to ``fmrecipes <name>``
    # the report's tables; keys no table declares are laid out by their shape (see :mod:`fmrecipes.report`)
    tables: tuple[ReportTable, ...] = ()

    def run(self, cfg: Any) -> dict[str, Any]:
        """Every seed of ``cfg.seeds`` as a full replicate in ``OUT/seed<k>``, then means, spreads, per-seed values
        and the claims' verdicts in ``OUT/summary.json`` (see :mod:`fmrecipes.claims`). Finished replicates
        with the same config are reused, so a killed run resumes."""
        cfg.validate()  # the one check of a config built in code (configs read from YAML were checked on loading)
        seeds = list(cfg.seeds)
        if not seeds or len(set(seeds)) != len(seeds) or not all(isinstance(s, int) for s in seeds):
            raise ConfigError(f"seeds={seeds} must be a non-empty list of distinct integers")
        env = dist.setup(cfg.run)  # once, at the entry point; every replicate runs in it
        t0 = time.perf_counter()
        out = ensure_dir(cfg.out)
        replicates, reused = {}, []
        with run_lock(out, env.is_main):  # one run per output directory
            for i, seed in enumerate(seeds, 1):
                print(f"[{self.name}] replicate seed {seed} ({i} of {len(seeds)})", flush=True)
                rep = replicate(cfg, seed)
                if finished(rep):
                    reused.append(seed)
                replicates[seed] = run_replicate(self, rep, env)
            # wall_time_s is this command's; a reused replicate's time is not in it (`reused_seeds`)
            summary = {**aggregate(replicates), **judge(self.claims, replicates), **self.paper_numbers,
                       "seeds": seeds, "reused_seeds": reused, "wall_time_s": round(time.perf_counter() - t0, 1),
                       "machine": machine(env)}
            if env.is_main:  # under torchrun every rank computes, rank 0 writes; the config only once it ran
                atomic_write_json(out / SUMMARY, summary)
                configlib.dump_yaml(cfg, out / "config.yaml")
        return summary


def machine(env: DistEnv) -> str:
    """Where a run ran: host, CPU architecture and threads, device, Python and torch versions."""
    gpu = torch.cuda.get_device_name(env.device) if env.device.type == "cuda" else "no GPU"
    return (f"{platform.node() or 'host'}: {platform.machine()}, {torch.get_num_threads()} threads, {gpu}, "
            f"Python {platform.python_version()}, torch {torch.__version__}")


def replicate(cfg: Any, seed: int) -> Any:
    """``cfg`` as the replicate of ``seed``: every ``seed`` field (data order, initialisation, sampling, data
    generation) set to it, ``seeds = [seed]`` and ``out = OUT/seed<seed>``."""

    def reseed(node: Any) -> Any:
        if dataclasses.is_dataclass(node) and not isinstance(node, type):
            changes = {f.name: seed if f.name == "seed" else reseed(getattr(node, f.name))
                       for f in dataclasses.fields(node)}
            return dataclasses.replace(node, **changes)
        if isinstance(node, list):
            return [reseed(x) for x in node]
        return node

    return dataclasses.replace(reseed(cfg), seeds=[seed], out=str(Path(cfg.out) / f"seed{seed}"))


def finished(cfg: Any) -> bool:
    """Whether the replicate in ``cfg.out`` has finished with this config (``run_replicate`` then reuses it)."""
    done, saved = Path(cfg.out) / SUMMARY, Path(cfg.out) / "config.yaml"
    return done.is_file() and saved.is_file() and saved.read_text() == configlib.to_yaml(cfg)


def run_replicate(recipe: Recipe, cfg: Any, env: DistEnv) -> dict[str, Any]:
    """One replicate in ``cfg.out``; reuses its ``summary.json`` when its ``config.yaml`` is unchanged. Both are
    written after the experiment succeeds (summary first), so a command that fails leaves them as they were."""
    if finished(cfg):
        return json.loads((Path(cfg.out) / SUMMARY).read_text())
    out = ensure_dir(cfg.out)
    text = configlib.to_yaml(cfg)
    done, saved = out / SUMMARY, out / "config.yaml"
    dist.barrier(env)  # every rank has decided before rank 0 touches the files
    result = recipe.run_experiment(cfg, env)
    if env.is_main:
        atomic_write_json(done, result)
        atomic_write_text(saved, text)
    return result
