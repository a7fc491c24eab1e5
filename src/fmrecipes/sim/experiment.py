"""One replicate of ``fmrecipes sim run`` / ``reproduce sim``: the teacher's quality against NFE, then SIM
(pseudo-Huber), SIM-L2, SiD and Diff-Instruct distilled from the same teacher with equal budgets, on a 2-D
mixture and on images; quality against generator images seen (the paper's convergence claim), final quality
and the one-step speed-up."""

from __future__ import annotations

from typing import Any

from ..core import dist
from ..core.fileio import ensure_dir
from .config import SimConfig


def run_experiment(cfg: SimConfig, env: dist.DistEnv) -> dict[str, Any]:
    from .image_task import run_images
    from .plots import convergence, gradient_profiles, sample_grids, toy_scatter
    from .toy_task import run_toy

    out = ensure_dir(cfg.out)
    summary: dict[str, Any] = {}
    if cfg.run_toy:
        toy_summary, toy = run_toy(cfg, ensure_dir(out / "toy"), env)
        summary.update(toy_summary)
    if cfg.run_toy and env.is_main:  # under torchrun every process computes, the main one draws
        toy_scatter(toy["samples"], toy["means"], out / "toy_samples.png",
                    f"{cfg.toy.name}: one-step samples ({cfg.toy.distill.steps} steps per method)")
        convergence(toy["curves"], "energy", out / "toy_convergence.png", f"{cfg.toy.name}: energy distance",
                    {"teacher, 35 NFE": toy["teacher"]["energy"]}, logy=True)
    if cfg.run_images:
        img_summary, images = run_images(cfg, ensure_dir(out / "images"), env)
        summary.update(img_summary)
    if cfg.run_images and env.is_main:
        kind = "class-conditional" if cfg.images.conditional else "unconditional"
        sample_grids(images["grids"], out / "image_samples.png", f"{cfg.images.dataset} ({kind})")
        convergence(images["curves"], "fd", out / "image_convergence.png",
                    f"{cfg.images.dataset}: FD-classifier of the EMA generator", images["teacher_fd"], logy=True)
        gradient_profiles(images["probes"], out / "image_grad_profile.png",
                          "where each run's generator update lands over noise levels (exact Gaussian probe)")
    return summary
