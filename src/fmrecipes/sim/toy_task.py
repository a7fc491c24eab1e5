"""The 2-D task (SIM notes A.7.3): an exact Gaussian-mixture teacher, one-step generators distilled from it by
each method with equal budgets, scored by modes covered, high-quality fraction and energy distance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..core import dist
from ..core.fileio import ensure_dir
from .config import SimConfig, distill_runs, run_settings
from .distill import distill, final_metrics, one_step
from .edm import sample_nfe
from .gmm import make_toy
from .quality import toy_metrics
from .teacher import TensorData, build_denoiser, train_denoiser

TEACHER_NFE = 35


def run_toy(cfg: SimConfig, out: Path, env: dist.DistEnv) -> tuple[dict[str, float], dict[str, Any]]:
    """Returns the summary entries (each run's metrics) and what the plots need (samples, curves, the mixture)."""
    device = env.device
    toy = cfg.toy
    gmm = make_toy(toy.name, toy.std).to(device)
    g = torch.Generator().manual_seed(cfg.seed + 1)
    reference = gmm.sample(toy.n_eval, g)[0].to(device)
    z_eval = torch.randn(toy.n_eval, gmm.dim, generator=g).to(device)
    summary: dict[str, float] = {}
    samples: dict[str, torch.Tensor] = {"data": reference.cpu()}

    teacher = sample_nfe(gmm, z_eval, TEACHER_NFE, cfg.edm)
    samples[f"teacher ({TEACHER_NFE} NFE)"] = teacher.cpu()
    for k, v in toy_metrics(teacher, gmm, reference).items():
        summary[f"{k}.teacher"] = v

    def evaluate(generator: torch.nn.Module) -> dict[str, float]:
        with torch.no_grad():
            return toy_metrics(one_step(generator, z_eval, toy.distill.sigma_init), gmm, reference)

    data = TensorData(gmm.sample(toy.n_data, torch.Generator().manual_seed(cfg.seed + 2))[0])
    curves = {}
    init = build_denoiser(toy.net, (gmm.dim,), cfg.edm, seed=cfg.seed)
    init = train_denoiser(init, data, toy.init, cfg.edm, out / "init", env)
    samples["init generator"] = evaluate_samples(init, z_eval, toy.distill.sigma_init)
    runs = distill_runs(toy.distill, cfg.methods, toy.huber_c_ablation, toy.weighting_ablation)
    summary.update({f"toy_{k}": v for k, v in run_settings(runs).items()})
    for name, dcfg in runs.items():
        print(f"[sim] 2-D {toy.name}: {name}", flush=True)
        generator = distill(init, gmm, lambda n: (torch.randn(n, gmm.dim, device=device), None), dcfg,
                            cfg.edm, ensure_dir(out / name), env, evaluate)
        summary.update({f"{k}.{name}": v for k, v in final_metrics(out / name).items()})
        samples[name] = evaluate_samples(generator, z_eval, dcfg.sigma_init)
        curves[name] = out / name / "metrics.jsonl"
    return summary, {"samples": samples, "curves": curves, "means": gmm.means.cpu(),
                     "teacher": {k.split(".")[0]: v for k, v in summary.items() if k.endswith(".teacher")}}


@torch.no_grad()
def evaluate_samples(generator: torch.nn.Module, z: torch.Tensor, sigma_init: float) -> torch.Tensor:
    return one_step(generator, z, sigma_init).cpu()
