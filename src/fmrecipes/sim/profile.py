"""Where a generator loss puts its weight over noise levels, in effect (issue 30's distance comparison).

The weighting w(sigma) is not the whole story: for the same w, the pseudo-Huber and L2 distances give generator
gradients whose size differs per noise level by a factor that grows with sigma (SIM notes A.2: per sample, PH's
loss is L2's times sigma^2 / (2 sqrt(||Delta||^2 + c^2 sigma^4)), and ||Delta|| shrinks as both denoisers tend to
their means at large sigma). So two runs that share w by name can spread their updates over noise levels
very differently. This module measures it where every score is exact: data x0 ~ N(0, s_d^2 I) in ``dim``
dimensions (teacher denoiser s_d^2 / (s_d^2 + sigma^2) x), a generator x_g = mu + s_g z with its own exact
denoiser as the fake score (parameters frozen, x_t live, as in the generator step, notes A.3), and the norm of
the gradient of each method's loss with respect to (mu, log s_g) at each sigma. Weighted by how often the method
samples each sigma, that is the share of its update each level contributes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import torch

from .config import DistillConfig, GaussianProbe
from .edm import EDMConfig
from .losses import LossConfig, generator_loss, sample_generator_sigma


def probe_sigmas(probe: GaussianProbe, edm: EDMConfig) -> list[float]:
    """The probed noise levels: ``levels`` log-spaced from EDM's sigma_min to sigma_max."""
    ratio = edm.sigma_max / edm.sigma_min
    return [edm.sigma_min * ratio ** (k / (probe.levels - 1)) for k in range(probe.levels)]


def _gaussian_denoiser(mean: torch.Tensor | float, std: torch.Tensor | float):
    """E[x0 | x0 + sigma n = x] for x0 ~ N(mean, std^2 I): mean + std^2 / (std^2 + sigma^2) (x - mean)."""
    def denoise(x: torch.Tensor, sigma: float) -> torch.Tensor:
        return mean + std ** 2 / (std ** 2 + sigma ** 2) * (x - mean)
    return denoise


def gradient_profile(loss: LossConfig, sigmas: Sequence[float], probe: GaussianProbe, dim: int,
                     seed: int = 0) -> list[float]:
    """The norm of d(mean generator loss)/d(mu, log s_g) at each noise level in ``sigmas``, in ``dim`` dimensions
    (the same z and eps at every level, so the profile's shape is not sampling noise)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(probe.batch, dim, generator=g, dtype=torch.float64)
    eps = torch.randn(probe.batch, dim, generator=g, dtype=torch.float64)
    teacher = _gaussian_denoiser(0.0, probe.data_std)
    fake = _gaussian_denoiser(probe.generator_shift, probe.generator_std)  # the generator's own, frozen
    out = []
    for s in sigmas:
        mu = torch.full((dim,), probe.generator_shift, dtype=torch.float64, requires_grad=True)
        log_std = torch.tensor(math.log(probe.generator_std), dtype=torch.float64, requires_grad=True)
        x_g = mu + log_std.exp() * z
        x_t = x_g + s * eps
        sigma = torch.full((probe.batch,), s, dtype=torch.float64)
        per_sample = generator_loss(loss, x_g, teacher(x_t, s), fake(x_t, s), sigma)
        grads = torch.autograd.grad(per_sample.mean(), (mu, log_std))
        out.append(float(torch.cat([gr.flatten() for gr in grads]).norm()))
    return out


def level_shares(loss: LossConfig, edm: EDMConfig, sigmas: Sequence[float], profile: Sequence[float],
                 draws: int = 20_000, seed: int = 0) -> list[float]:
    """Each probed level's share of the expected update: how often the method's generator step samples a sigma
    nearest that level (in log sigma) times the level's gradient norm, normalised to sum to 1. The draws are
    seeded without touching the caller's global random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        drawn = sample_generator_sigma(draws, loss, edm).double().log()
    nearest = (drawn[:, None] - torch.tensor(sigmas, dtype=torch.float64).log()[None]).abs().argmin(1)
    often = torch.bincount(nearest, minlength=len(sigmas)).double() / draws
    mass = often * torch.tensor(profile, dtype=torch.float64)
    return (mass / mass.sum()).tolist()


def matched_weighting(reference: LossConfig, loss: LossConfig, probe: GaussianProbe, dim: int, edm: EDMConfig
                      ) -> list[list[float]]:
    """A w(sigma) table under which ``loss`` (SIM's distance at weighting sigma^2 rescaled per level) gives the
    same gradient norm per noise level as ``reference`` on the probe: w(sigma) = sigma^2 x g_ref(sigma) /
    g(sigma) with g measured under w = sigma^2. Both runs then spread their updates over noise levels alike, so
    what still differs between them is the distance. Pairs [sigma, w(sigma)] at the probed levels."""
    sigmas = probe_sigmas(probe, edm)
    base = replace(loss, weighting="sigma2", weighting_table=None)
    g_ref, g = gradient_profile(reference, sigmas, probe, dim), gradient_profile(base, sigmas, probe, dim)
    return [[s, s ** 2 * r / max(v, 1e-300)] for s, r, v in zip(sigmas, g_ref, g)]


def profiles(runs: dict[str, DistillConfig], probe: GaussianProbe, dim: int, edm: EDMConfig) -> dict[str, dict]:
    """Every run's probe: the levels, its gradient norm and update share at each, and the share above sigma = 1."""
    sigmas = probe_sigmas(probe, edm)
    out = {}
    for name, dcfg in runs.items():
        grads = gradient_profile(dcfg.loss, sigmas, probe, dim)
        shares = level_shares(dcfg.loss, edm, sigmas, grads)
        out[name] = {"sigma": sigmas, "grad_norm": grads, "share": shares,
                     "share_above_sigma1": sum(sh for sh, s in zip(shares, sigmas) if s > 1)}
    return out


def with_matched_run(runs: dict[str, DistillConfig], probe: GaussianProbe, dim: int, edm: EDMConfig
                     ) -> dict[str, DistillConfig]:
    """``runs`` and ``sim_l2_wmatched``: SIM-L2 with its w(sigma) matched per level to SIM-PH's run (its own
    weighting and c), so that the two differ by the distance alone in effect, not just by name."""
    if "sim_phuber" not in runs or "sim_l2" not in runs:
        return runs
    table = matched_weighting(runs["sim_phuber"].loss, runs["sim_l2"].loss, probe, dim, edm)
    l2 = runs["sim_l2"]
    return {**runs, "sim_l2_wmatched": replace(l2, loss=replace(l2.loss, weighting="table", weighting_table=table))}
