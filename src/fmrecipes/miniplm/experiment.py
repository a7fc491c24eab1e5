"""One replicate of the MiniPLM comparison (``fmrecipes miniplm run`` / ``reproduce miniplm``).

Teacher and reference, each trained on its own documents (disjoint from the scored pool D), scores on D,
selections (random, MiniPLM, RHO), then students of each size trained at equal training tokens (the paper's main
setting: one pass over the selected data, :func:`headline_budget`): no KD, Vanilla KD (compute-matched and
step-matched), random 50%, MiniPLM and RHO; plus a Llama-architecture student on the no-KD and MiniPLM data (the
cross-family check), and optionally the data-limited table (no KD and MiniPLM at a longer budget that repeats
data). Every stage is cached in the output directory, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch.nn as nn

from ..core import dist
from ..core.fileio import ensure_dir
from ..core.gpt import GPT, GPTConfig
from ..core.hf import llama_like
from ..core.metrics import read_jsonl
from ..core.train import TrainConfig
from .config import MiniPLMConfig
from .plots import val_loss_vs_tokens
from .pool import Pool, Subset, build_pool, record_parts, skipped_eos
from .score import score
from .select import refined_dataset, selector_scores, top_alpha, write_refined
from .stages import compute_matched, num_params, sized, train_model, val_losses

SELECTED = ("random", "miniplm", "rho")


def _select_all(cfg: MiniPLMConfig, pool: Pool, out: Path, teacher, reference, env) -> dict[str, dict]:
    """Score D with the teacher and reference (and RHO's proxy student), then write each selection."""
    wanted = [m for m in SELECTED if m in cfg.methods]
    if not wanted:
        return {}
    L = cfg.seq_len
    common = dict(batch_size=cfg.score_batch_size, chunk=cfg.score_chunk, env=env, eos_id=skipped_eos(cfg, pool))
    nll = {"teacher": score(teacher, pool.train, pool.pool_indices, out / "scores" / "teacher", pool.pool_hash,
                            "teacher", **common),
           "reference": score(reference, pool.train, pool.pool_indices, out / "scores" / "reference",
                              pool.pool_hash, "reference", **common)}
    if "rho" in wanted:
        rng = np.random.default_rng(cfg.student_train.seed)
        proxy_cfg = one_pass(dataclasses.replace(cfg.student_train, steps=cfg.rho_proxy_steps,
                                                 warmup_steps=min(cfg.student_train.warmup_steps,
                                                                  cfg.rho_proxy_steps)))
        slice_ = np.sort(rng.choice(pool.pool_indices, size=max(1, len(pool.pool_indices) // 10), replace=False))
        proxy, _ = train_model(sized(cfg.students[0].model, cfg.vocab_size, L), proxy_cfg, Subset(pool.train, slice_),
                               pool.val, out / "models" / "rho_proxy", env, tokenizer=pool.tokenizer)
        nll["proxy"] = score(proxy, pool.train, pool.pool_indices, out / "scores" / "rho_proxy", pool.pool_hash,
                             "rho_proxy", **common)
    domains = pool.domains(pool.train, pool.pool_indices)
    reports, kept = {}, {}
    for method in wanted:
        scores = selector_scores(method, nll.get("teacher"), nll.get("reference"), nll.get("proxy"),
                                 n=len(pool.pool_indices), seed=cfg.student_train.seed)
        kept[method] = top_alpha(scores, cfg.alpha)
        reports[method] = write_refined(out / "refined" / method, pool.train, pool.pool_indices, kept[method],
                                        domains, cfg.vocab_size, method, cfg.alpha, env)
    reports["_nll"] = nll
    reports["_kept"] = kept
    return reports


def one_pass(train_cfg: TrainConfig) -> TrainConfig:
    """A student's sampling: steps walk a fresh permutation of its data each epoch, so within a pass every
    instance is read exactly once (the paper's and its official code's one pass; ``random`` would draw with
    replacement and read about 63% of the data once)."""
    return dataclasses.replace(train_cfg, sampling="epochs")


def headline_budget(cfg: MiniPLMConfig, pool: Pool) -> TrainConfig:
    """The students' training budget: ``student_passes`` passes over the selected data (alpha·|D| instances),
    every student the same steps (whole batches: one pass reads no instance twice), walked in epochs
    (:func:`one_pass`); ``student_train``'s steps when ``student_passes`` is None."""
    if cfg.student_passes is None:
        return one_pass(cfg.student_train)
    selected = int(cfg.alpha * len(pool.pool_indices))
    steps = max(1, math.floor(cfg.student_passes * selected / cfg.student_train.batch_size))
    return one_pass(dataclasses.replace(cfg.student_train, steps=steps))


@dataclass
class _Students:
    """What training and evaluating a student needs, fixed for one replicate."""

    cfg: MiniPLMConfig
    pool: Pool
    out: Path
    env: dist.DistEnv
    teacher: nn.Module
    n_reference: int

    def __post_init__(self) -> None:
        self.val_domains = self.pool.domains(self.pool.val, np.arange(len(self.pool.val)))
        self.limit = self.cfg.student_train.eval_batches * self.cfg.student_train.micro_batch_size * 4
        self.eos = skipped_eos(self.cfg, self.pool)

    def val_loss(self, model: nn.Module) -> dict[str, float]:
        return val_losses(model, self.pool.val, self.val_domains, self.cfg.score_batch_size, self.env, self.limit)

    def train(self, name: str, model_cfg: GPTConfig, method: str, train_cfg: TrainConfig, run: str,
              is_llama: bool = False) -> tuple[dict[str, float], float, list[tuple[float, float]]]:
        """Train one student on ``method``'s data (Vanilla KD online, compute-matched for ``vanilla_kd``);
        returns its validation losses, its training FLOPs (selection's offline forward passes included) and
        its validation curve against training tokens."""
        cfg, L = self.cfg, self.cfg.seq_len
        data, teacher = Subset(self.pool.train, self.pool.pool_indices), None
        if method in SELECTED:
            data = refined_dataset(self.out, method, L)
        n_t = num_params(self.teacher)
        if method.startswith("vanilla_kd"):
            teacher = self.teacher
            if method == "vanilla_kd":
                train_cfg = compute_matched(train_cfg, model_cfg, n_t)
        run_dir = self.out / "students" / name / run
        model, _ = train_model(model_cfg, train_cfg, data, self.pool.val, run_dir, self.env, teacher=teacher,
                               kd_ratio=cfg.kd_ratio, temperature=cfg.kd_temperature, hf_llama=is_llama,
                               eos_id=self.eos, tokenizer=self.pool.tokenizer)
        n_s, tokens_d = num_params(model), len(self.pool.pool_indices) * L
        tokens = train_cfg.steps * train_cfg.batch_size * L
        flops = 6 * n_s * tokens + (2 * n_t * tokens if teacher is not None else 0)
        if method == "miniplm":
            flops += 2 * (n_t + self.n_reference) * tokens_d  # the teacher's (and reference's) forward, once
        if method == "rho":
            flops += 2 * (n_s + self.n_reference) * tokens_d + 6 * n_s * cfg.rho_proxy_steps * train_cfg.batch_size * L
        curve = [(r["step"] * train_cfg.batch_size * L, r["val_loss"]) for r in read_jsonl(run_dir / "metrics.jsonl")
                 if "val_loss" in r]
        return self.val_loss(model), flops, curve


def tokens_per_param(budget: TrainConfig, model_cfg: GPTConfig, is_llama: bool) -> float:
    """Training tokens per parameter of a student (the paper's 200M student reads 50B tokens: about 250)."""
    model = llama_like(model_cfg) if is_llama else GPT(model_cfg)
    return budget.steps * budget.batch_size * model_cfg.seq_len / num_params(model)


def run_experiment(cfg: MiniPLMConfig, env: dist.DistEnv) -> dict[str, Any]:
    out = ensure_dir(cfg.out)
    pool = build_pool(cfg, env)
    if env.is_main:
        record_parts(pool, out)
    L, V = cfg.seq_len, cfg.vocab_size
    teacher, _ = train_model(sized(cfg.teacher, V, L), cfg.teacher_train, Subset(pool.train, pool.teacher_indices),
                             pool.val, out / "models" / "teacher", env, tokenizer=pool.tokenizer)
    reference, _ = train_model(sized(cfg.reference, V, L), cfg.reference_train, Subset(pool.train, pool.ref_indices),
                               pool.val, out / "models" / "reference", env, tokenizer=pool.tokenizer)
    reports = _select_all(cfg, pool, out, teacher, reference, env)
    nll, kept = reports.pop("_nll", {}), reports.pop("_kept", {})
    st = _Students(cfg, pool, out, env, teacher, num_params(reference))
    budget = headline_budget(cfg, pool)
    # rounded as the students' losses: beyond 4 decimals they are float noise (one process vs torchrun differ there)
    t_val, r_val = round(st.val_loss(teacher)["balanced"], 4), round(st.val_loss(reference)["balanced"], 4)
    summary: dict[str, Any] = {"teacher_val_loss": t_val, "reference_val_loss": r_val,
                               "teacher_ref_gap": round(r_val - t_val, 4), "student_steps": budget.steps,
                               "instances.teacher": len(pool.teacher_indices),
                               "instances.reference": len(pool.ref_indices), "instances.pool": len(pool.pool_indices)}
    curves: dict[str, list[tuple[float, float]]] = {}
    students = [(s.name, sized(s.model, V, L), False) for s in cfg.students]
    if cfg.cross_family:
        students.append(("llama", sized(cfg.students[0].model, V, L), True))
    first = cfg.students[0].name
    for name, model_cfg, is_llama in students:
        for method in [m for m in cfg.methods if not is_llama or m in ("no_kd", "miniplm")]:
            losses, flops, curves[f"{method}.{name}"] = st.train(name, model_cfg, method, budget, method, is_llama)
            summary[f"val_loss.{method}.{name}"] = round(losses["all"], 4)
            summary.update({f"val_loss_{d}.{method}.{name}": round(v, 4) for d, v in losses.items() if d != "all"})
            if name == first:  # size-independent keys the claims compare (domain-balanced, and pooled)
                summary[f"student_val_loss.{method}"] = round(losses["balanced"], 4)
                summary[f"student_val_loss_pooled.{method}"] = round(losses["all"], 4)
                summary[f"flops.{method}"] = float(f"{flops:.3g}")
        summary[f"tokens_per_param.{name}"] = round(tokens_per_param(budget, model_cfg, is_llama), 2)
    summary["tokens_per_param"] = summary[f"tokens_per_param.{first}"]
    if cfg.data_limited_steps is not None:
        limited = dataclasses.replace(cfg.student_train, steps=cfg.data_limited_steps)
        for method in [m for m in ("no_kd", "miniplm") if m in cfg.methods]:
            losses, _, _ = st.train(first, students[0][1], method, one_pass(limited), f"{method}_data_limited")
            summary[f"val_loss_data_limited.{method}.{first}"] = round(losses["balanced"], 4)
        summary["data_limited_steps"] = cfg.data_limited_steps
    for method, rep in reports.items():
        for d, frac in rep["kept_fraction"].items():
            summary[f"kept_fraction_{method}.{d}"] = frac
    if "miniplm" in kept and "rho" in kept:
        summary["selection_overlap.miniplm_rho"] = round(len(np.intersect1d(kept["miniplm"], kept["rho"]))
                                                         / max(1, len(kept["miniplm"])), 4)
    if "teacher" in nll:
        r = nll["reference"] - nll["teacher"]
        summary["difference_score_negative_fraction"] = round(float((r < 0).mean()), 4)
    val_loss_vs_tokens(curves, out / "val_loss_vs_tokens.png")
    return summary
