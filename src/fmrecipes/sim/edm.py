"""EDM (Karras et al. 2022): preconditioning, the denoising loss and the samplers, as three separate things.

A *denoiser* is any callable ``D(x, sigma, class_labels) -> x0_hat`` on the variance-exploding process
``x = x0 + sigma * n``; its score is ``(D(x; sigma) - x) / sigma^2`` (SIM notes A.1, alpha_t = 1).
Samplers are plain functions of a denoiser (EDM Algorithm 1, deterministic: S_churn = 0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn

Denoiser = Callable[..., torch.Tensor]


@dataclass
class EDMConfig:
    """EDM's CIFAR-10 constants (Table 1 of the EDM paper; SIM notes A.3-A.4)."""

    sigma_data: float = 0.5
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    rho: float = 7.0
    P_mean: float = -1.2  # training sigma ~ LogNormal(P_mean, P_std)
    P_std: float = 1.2


def _expand(sigma: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    """``sigma`` (scalar or one per sample) shaped to broadcast against ``x``."""
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    if sigma.dim() == 0:
        sigma = sigma.expand(x.shape[0])
    return sigma.reshape(-1, *([1] * (x.dim() - 1)))


class EDMPrecond(nn.Module):
    """``D(x; sigma) = c_skip x + c_out F(c_in x, c_noise)`` (EDM Table 1, "Ours" column).

    ``net(x_in, c_noise, class_labels)`` is the raw network ``F``; ``c_noise = ln(sigma) / 4``.
    """

    def __init__(self, net: nn.Module, sigma_data: float = 0.5):
        super().__init__()
        self.net = net
        self.sigma_data = sigma_data

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float,
                class_labels: torch.Tensor | None = None) -> torch.Tensor:
        s = _expand(sigma, x)
        sd2 = self.sigma_data ** 2
        c_skip = sd2 / (s ** 2 + sd2)
        c_out = s * self.sigma_data / (s ** 2 + sd2).sqrt()
        c_in = 1 / (s ** 2 + sd2).sqrt()
        c_noise = s.log().flatten() / 4
        return c_skip * x + c_out * self.net(c_in * x, c_noise, class_labels)


def sample_training_sigma(n: int, cfg: EDMConfig, device: torch.device | str = "cpu",
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """sigma = exp(P_mean + P_std * N(0, 1)) (EDM Eq. in Table 1, "training")."""
    return training_sigma(torch.randn(n, device=device, generator=generator), cfg)


def training_sigma(normal: torch.Tensor, cfg: EDMConfig) -> torch.Tensor:
    """The training sigma of standard normal draws ``normal``: exp(P_mean + P_std * normal) (EDM Table 1)."""
    return (cfg.P_mean + cfg.P_std * normal).exp()


def edm_loss(denoiser: Denoiser, x0: torch.Tensor, cfg: EDMConfig, class_labels: torch.Tensor | None = None,
             sigma: torch.Tensor | None = None, noise: torch.Tensor | None = None) -> torch.Tensor:
    """EDM denoising score matching: E lambda(sigma) ||D(x0 + sigma n; sigma) - x0||^2 with
    lambda = (sigma^2 + sigma_data^2) / (sigma sigma_data)^2. Averaged over elements (EDM sums; with Adam
    only the scale of the learning signal's clipping differs). ``sigma`` and ``noise`` are drawn here (in that
    order) unless given, as a process's share of a batch drawn whole is."""
    if sigma is None:
        sigma = sample_training_sigma(x0.shape[0], cfg, x0.device)
    s = _expand(sigma, x0)
    weight = (s ** 2 + cfg.sigma_data ** 2) / (s * cfg.sigma_data) ** 2
    denoised = denoiser(x0 + s * (torch.randn_like(x0) if noise is None else noise), sigma, class_labels)
    return (weight * (denoised - x0) ** 2).mean()


def karras_sigmas(steps: int, cfg: EDMConfig, device: torch.device | str = "cpu") -> torch.Tensor:
    """The EDM time steps sigma_0 = sigma_max > ... > sigma_{N-1} = sigma_min, then 0 (EDM Eq. 5)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    i = torch.arange(steps, dtype=torch.float64, device=device)
    inv = 1 / cfg.rho
    ramp = i / max(steps - 1, 1)
    sig = (cfg.sigma_max ** inv + ramp * (cfg.sigma_min ** inv - cfg.sigma_max ** inv)) ** cfg.rho
    return torch.cat([sig, torch.zeros(1, dtype=torch.float64, device=device)])


@torch.no_grad()
def euler_sample(denoiser: Denoiser, noise: torch.Tensor, steps: int, cfg: EDMConfig,
                 class_labels: torch.Tensor | None = None) -> torch.Tensor:
    """The probability-flow ODE dx/dsigma = (x - D(x; sigma)) / sigma by Euler steps: NFE = ``steps``."""
    sigmas = karras_sigmas(steps, cfg, noise.device)
    x = noise.double() * sigmas[0]
    for s_cur, s_next in zip(sigmas[:-1], sigmas[1:]):
        d = (x - denoiser(x.to(noise.dtype), s_cur.to(noise.dtype), class_labels).double()) / s_cur
        x = x + (s_next - s_cur) * d
    return x.to(noise.dtype)


@torch.no_grad()
def heun_sample(denoiser: Denoiser, noise: torch.Tensor, steps: int, cfg: EDMConfig,
                class_labels: torch.Tensor | None = None) -> torch.Tensor:
    """EDM Algorithm 1 (deterministic): Heun's 2nd-order steps, Euler on the last: NFE = 2 steps - 1."""
    sigmas = karras_sigmas(steps, cfg, noise.device)
    x = noise.double() * sigmas[0]

    def slope(x_: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return (x_ - denoiser(x_.to(noise.dtype), s.to(noise.dtype), class_labels).double()) / s

    for s_cur, s_next in zip(sigmas[:-1], sigmas[1:]):
        d = slope(x, s_cur)
        x_next = x + (s_next - s_cur) * d
        if s_next > 0:
            x_next = x + (s_next - s_cur) * 0.5 * (d + slope(x_next, s_next))
        x = x_next
    return x.to(noise.dtype)


def sample_nfe(denoiser: Denoiser, noise: torch.Tensor, nfe: int, cfg: EDMConfig,
               class_labels: torch.Tensor | None = None) -> torch.Tensor:
    """The teacher's sampler at a given number of network evaluations: Heun with (nfe + 1) / 2 steps when
    ``nfe`` is odd and > 1 (NFE 35 = EDM's 18-step CIFAR-10 sampler), otherwise Euler with ``nfe`` steps."""
    if nfe < 1:
        raise ValueError(f"nfe must be >= 1, got {nfe}")
    if nfe > 1 and nfe % 2 == 1:
        return heun_sample(denoiser, noise, (nfe + 1) // 2, cfg, class_labels)
    return euler_sample(denoiser, noise, nfe, cfg, class_labels)


class DDPMEpsDenoiser(nn.Module):
    """An epsilon-prediction UNet trained on a discrete DDPM schedule, as an EDM denoiser (SIM notes A.4: how
    the SIM authors wrap PixArt-alpha; EDM's iDDPMPrecond recipe with a linear-beta table).

    sigma_j = sqrt(1 / alpha_bar_j - 1); D(x; sigma) = x - sigma * eps(c_in x, j) with c_in = 1 / sqrt(sigma^2 + 1)
    and j the timestep whose sigma_j is nearest to sigma. ``unet(x, t, class_labels=...)`` may return a
    diffusers output (``.sample``); only its first ``channels`` channels are used (learned-variance models
    predict 2C).
    """

    def __init__(self, unet: nn.Module, channels: int, num_train_timesteps: int = 1000,
                 beta_start: float = 1e-4, beta_end: float = 0.02):
        super().__init__()
        self.unet = unet
        self.channels = channels
        betas = torch.linspace(beta_start, beta_end, num_train_timesteps, dtype=torch.float64)
        alpha_bar = torch.cumprod(1 - betas, 0)
        self.register_buffer("sigmas", (1 / alpha_bar - 1).sqrt(), persistent=False)

    def timestep(self, sigma: torch.Tensor) -> torch.Tensor:
        """The index j of the nearest table sigma (c_noise = j, i.e. EDM's M - 1 - j on its reversed table)."""
        return (self.sigmas[None, :] - sigma.double().reshape(-1, 1)).abs().argmin(dim=1)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float,
                class_labels: torch.Tensor | None = None) -> torch.Tensor:
        s = _expand(sigma, x)
        t = self.timestep(s.flatten())
        kwargs = {} if class_labels is None else {"class_labels": class_labels}
        out = self.unet(x / (s ** 2 + 1).sqrt(), t, **kwargs)
        eps = (out.sample if hasattr(out, "sample") else out)[:, :self.channels]
        return x - s * eps
