"""2-D Gaussian-mixture teachers whose noised score is exact (SIM notes A.7.3): no teacher training.

p_sigma = sum_k pi_k N(mu_k, (s_k^2 + sigma^2) I), so the ideal denoiser is the posterior mean
E[x0 | x] = sum_k r_k(x) (mu_k + s_k^2 / (s_k^2 + sigma^2) (x - mu_k)), with r_k the component posteriors.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from ..errors import ConfigError


class GaussianMixture(nn.Module):
    """Isotropic mixture with an exact EDM denoiser ``forward(x, sigma)`` and ``sample``."""

    def __init__(self, means: torch.Tensor, stds: torch.Tensor, weights: torch.Tensor | None = None):
        super().__init__()
        k = means.shape[0]
        weights = torch.full((k,), 1.0 / k) if weights is None else weights / weights.sum()
        self.register_buffer("means", means.double())
        self.register_buffer("stds", stds.double().expand(k).clone())
        self.register_buffer("weights", weights.double())

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def forward(self, x: torch.Tensor, sigma: torch.Tensor | float,
                class_labels: torch.Tensor | None = None) -> torch.Tensor:
        x64 = x.double()
        s2 = torch.as_tensor(sigma, dtype=torch.float64, device=x.device).reshape(-1, 1) ** 2  # [B or 1, 1]
        var = self.stds[None, :] ** 2 + s2                                                      # [B, K]
        diff = x64[:, None, :] - self.means[None, :, :]                                          # [B, K, D]
        log_r = self.weights.log()[None] - 0.5 * (diff ** 2).sum(-1) / var - 0.5 * self.dim * var.log()
        r = log_r.softmax(dim=1)
        shrink = (self.stds[None, :] ** 2 / var)[..., None]                                        # [B, K, 1]
        posterior = self.means[None] + shrink * diff
        return (r[..., None] * posterior).sum(1).to(x.dtype)

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` samples (float32, on the CPU, from a CPU ``generator``) and each one's component."""
        means, stds = self.means.cpu(), self.stds.cpu()
        comp = torch.multinomial(self.weights.float().cpu(), n, replacement=True, generator=generator)
        noise = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        return (means[comp] + stds[comp, None] * noise).float(), comp


def ring(modes: int = 8, radius: float = 1.0, std: float = 0.05) -> GaussianMixture:
    angle = 2 * math.pi * torch.arange(modes, dtype=torch.float64) / modes
    return GaussianMixture(radius * torch.stack([angle.cos(), angle.sin()], 1), torch.tensor(std))


def grid(side: int = 5, spacing: float = 0.5, std: float = 0.05) -> GaussianMixture:
    axis = (torch.arange(side, dtype=torch.float64) - (side - 1) / 2) * spacing
    means = torch.cartesian_prod(axis, axis)
    return GaussianMixture(means, torch.tensor(std))


TOYS = {"ring8": lambda std: ring(8, 1.0, std), "grid25": lambda std: grid(5, 0.5, std)}


def make_toy(name: str, std: float) -> GaussianMixture:
    if name not in TOYS:
        raise ConfigError(f"toy={name!r} is unknown; choose one of {', '.join(TOYS)}")
    return TOYS[name](std)
