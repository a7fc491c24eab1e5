"""One replicate of the MiniPLM comparison (``fmrecipes miniplm run`` / ``reproduce miniplm``).

Teacher (trained on every training instance), reference (trained on D_ref only), scores on D, selections
(random, MiniPLM, RHO), then students of each size trained at equal training tokens: no KD, Vanilla KD
(compute-matched and step-matched), random 50%, MiniPLM and RHO; plus a Llama-architecture student on the
no-KD and MiniPLM data (the cross-family check). Every stage is cached in the output directory, so a killed
run resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from ..core import dist
from ..core.fileio import ensure_dir
from ..core.metrics import read_jsonl
from .config import MiniPLMConfig
from .plots import val_loss_vs_tokens
from .pool import Pool, Subset, build_pool
from .score import score
from .select import refined_dataset, selector_scores, top_alpha, write_refined
from .stages import compute_matched, num_params, sized, train_model, val_losses

# Table 2 of the paper: DCLM test loss extrapolated to 1T tokens (teacher Qwen1.5-1.8B), and Table 1's
# average zero-shot accuracy; students 200M / 500M / 1.2B.
PAPER = {
    "paper.dclm_loss_1T.no_kd.200M": 3.35, "paper.dclm_loss_1T.vanilla_kd.200M": 3.39,
    "paper.dclm_loss_1T.miniplm.200M": 3.28, "paper.dclm_loss_1T.no_kd.500M": 3.12,
    "paper.dclm_loss_1T.vanilla_kd.500M": 3.12, "paper.dclm_loss_1T.miniplm.500M": 3.06,
    "paper.avg_acc.no_kd.200M": 39.9, "paper.avg_acc.vanilla_kd.200M": 39.9, "paper.avg_acc.miniplm.200M": 41.3,
    "paper.avg_acc.no_kd.500M": 43.2, "paper.avg_acc.vanilla_kd.500M": 43.6, "paper.avg_acc.miniplm.500M": 44.8,
    "paper.cross_family_dclm_loss.no_kd.llama212M": 3.52, "paper.cross_family_dclm_loss.miniplm.llama212M": 3.43,
}
SELECTED = ("random", "miniplm", "rho")


def _select_all(cfg: MiniPLMConfig, pool: Pool, out: Path, teacher, reference, env) -> dict[str, dict]:
    """Score D with the teacher and reference (and RHO's proxy student), then write each selection."""
    wanted = [m for m in SELECTED if m in cfg.methods]
    if not wanted:
        return {}
    L = cfg.seq_len
    common = dict(batch_size=cfg.score_batch_size, chunk=cfg.score_chunk, env=env)
    nll = {"teacher": score(teacher, pool.train, pool.pool_indices, out / "scores" / "teacher", pool.pool_hash,
                            "teacher", **common),
           "reference": score(reference, pool.train, pool.pool_indices, out / "scores" / "reference",
                              pool.pool_hash, "reference", **common)}
    if "rho" in wanted:
        rng = np.random.default_rng(cfg.student_train.seed)
        proxy_cfg = dataclasses.replace(cfg.student_train, steps=cfg.rho_proxy_steps,
                                        warmup_steps=min(cfg.student_train.warmup_steps, cfg.rho_proxy_steps))
        slice_ = np.sort(rng.choice(pool.pool_indices, size=max(1, len(pool.pool_indices) // 10), replace=False))
        proxy, _ = train_model(sized(cfg.students[0].model, cfg.vocab_size, L), proxy_cfg, Subset(pool.train, slice_),
                               pool.val, out / "models" / "rho_proxy", env)
        nll["proxy"] = score(proxy, pool.train, pool.pool_indices, out / "scores" / "rho_proxy", pool.pool_hash,
                             "rho_proxy", **common)
    domains = pool.domains(pool.train, pool.pool_indices)
    reports = {}
    for method in wanted:
        scores = selector_scores(method, nll.get("teacher"), nll.get("reference"), nll.get("proxy"),
                                 n=len(pool.pool_indices), seed=cfg.student_train.seed)
        kept = top_alpha(scores, cfg.alpha)
        reports[method] = write_refined(out / "refined" / method, pool.train, pool.pool_indices, kept, domains,
                                        cfg.vocab_size, method, cfg.alpha)
    reports["_nll"] = nll
    return reports


def run_experiment(cfg: MiniPLMConfig, env: dist.DistEnv) -> dict[str, Any]:
    out = ensure_dir(cfg.out)
    pool = build_pool(cfg)
    L, V = cfg.seq_len, cfg.vocab_size
    teacher, _ = train_model(sized(cfg.teacher, V, L), cfg.teacher_train, pool.train, pool.val,
                             out / "models" / "teacher", env)
    reference, _ = train_model(sized(cfg.reference, V, L), cfg.reference_train, Subset(pool.train, pool.ref_indices),
                               pool.val, out / "models" / "reference", env)
    reports = _select_all(cfg, pool, out, teacher, reference, env)
    nll = reports.pop("_nll", {})
    val_domains = pool.domains(pool.val, np.arange(len(pool.val)))
    limit = cfg.student_train.eval_batches * cfg.student_train.micro_batch_size * 4
    n_t, n_r = num_params(teacher), num_params(reference)
    tokens_d = len(pool.pool_indices) * L
    summary: dict[str, Any] = {"teacher_val_loss": val_losses(teacher, pool.val, val_domains, cfg.score_batch_size,
                                                              env.device, limit)["all"],
                               "reference_val_loss": val_losses(reference, pool.val, val_domains,
                                                                cfg.score_batch_size, env.device, limit)["all"]}
    curves: dict[str, list[tuple[float, float]]] = {}
    students = [(s.name, sized(s.model, V, L), False) for s in cfg.students]
    if cfg.cross_family:
        students.append(("llama", sized(cfg.students[0].model, V, L), True))
    full = Subset(pool.train, pool.pool_indices)
    for name, model_cfg, is_llama in students:
        methods = [m for m in cfg.methods if not is_llama or m in ("no_kd", "miniplm")]
        for method in methods:
            train_cfg, teacher_arg, data = cfg.student_train, None, full
            if method in SELECTED:
                data = refined_dataset(out, method, L)
            if method.startswith("vanilla_kd"):
                teacher_arg = teacher
                if method == "vanilla_kd":
                    train_cfg = compute_matched(train_cfg, model_cfg, n_t)
            model, _ = train_model(model_cfg, train_cfg, data, pool.val, out / "students" / name / method, env,
                                   teacher=teacher_arg, kd_ratio=cfg.kd_ratio, temperature=cfg.kd_temperature,
                                   hf_llama=is_llama)
            losses = val_losses(model, pool.val, val_domains, cfg.score_batch_size, env.device, limit)
            summary[f"val_loss.{method}.{name}"] = round(losses["all"], 4)
            if name == cfg.students[0].name:  # size-independent key the claims compare
                summary[f"student_val_loss.{method}"] = round(losses["all"], 4)
            for d, v in losses.items():
                if d != "all":
                    summary[f"val_loss_{d}.{method}.{name}"] = round(v, 4)
            n_s = num_params(model)
            tokens = train_cfg.steps * train_cfg.batch_size * L
            flops = 6 * n_s * tokens + (2 * n_t * tokens if teacher_arg is not None else 0)
            if method == "miniplm":
                flops += 2 * (n_t + n_r) * tokens_d  # the teacher's (and reference's) forward, once, offline
            if method == "rho":
                flops += 2 * (n_s + n_r) * tokens_d + 6 * n_s * cfg.rho_proxy_steps * train_cfg.batch_size * L
            if name == cfg.students[0].name:
                summary[f"flops.{method}"] = float(f"{flops:.3g}")
            rows = read_jsonl(out / "students" / name / method / "metrics.jsonl")
            curves[f"{method}.{name}"] = [(r["step"] * train_cfg.batch_size * L, r["val_loss"]) for r in rows
                                          if "val_loss" in r]
    for method, rep in reports.items():
        for d, frac in rep["kept_fraction"].items():
            summary[f"kept_fraction_{method}.{d}"] = frac
    if "teacher" in nll:
        r = nll["reference"] - nll["teacher"]
        summary["difference_score_negative_fraction"] = round(float((r < 0).mean()), 4)
    val_loss_vs_tokens(curves, out / "val_loss_vs_tokens.png")
    return summary
