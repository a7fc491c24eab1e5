"""Generator losses for one-step distillation, per sample, in EDM denoiser units (SIM notes A.2-A.3).

Every loss takes the generator sample x_g (with gradient), the noise level sigma of x_t = x_g + sigma eps,
and the teacher and fake-score denoisers evaluated at x_t: f_phi(x_t), f_psi(x_t). For SIM, x_t carries
the gradient into both denoisers (their *parameters* are frozen); detaching either one is wrong (notes A.2).

Writing Delta = f_phi - f_psi, the score gap is y = Delta / sigma^2 and
s_psi(x_t) - grad log q(x_t | x_0) = (f_psi - x_g) / sigma^2, so SIM's loss (notes A.2)

    L_SIM = w(sigma) d'(y)^T (s_psi - grad log q(x_t | x_0))

becomes, for d(y) = ||y||^2 (SIM-L2):  2 w Delta^T (f_psi - x_g) / sigma^4, and for the pseudo-Huber
distance d(y) = sqrt(||y||^2 + c^2) - c over the whole sample (SIM-PH):
w Delta^T (f_psi - x_g) / (sigma^2 sqrt(||Delta||^2 + c^2 sigma^4)). ``c`` is in score units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from ..errors import ConfigError
from .edm import EDMConfig, sample_training_sigma

METHODS = ("sim_phuber", "sim_l2", "sid", "diff_instruct")


@dataclass
class LossConfig:
    method: str = "sim_phuber"
    huber_c: float = 1e-3        # pseudo-Huber c, score units (the SIM maintainers' "common value", notes A.3)
    # w(sigma): "sigma2" is the notes' w = sigma^2 (SIM-PH becomes Delta^T (f_psi - x_g) / sqrt(||Delta||^2 +
    # (c sigma^2)^2)); "sid" is SiD's sigma^4 / (2 mean|x_g - f_phi|), under which SIM-L2 *is* SiD at alpha = 1.
    # "auto": sigma2 for sim_phuber, sid for sim_l2 (SIM's own w(t) is not published, notes A.3). "table": w read
    # off weighting_table, pairs [sigma, w] interpolated linearly in log sigma and log w (ends held), e.g. the
    # per-level match of sim.profile.matched_weighting.
    weighting: Literal["auto", "sigma2", "sid", "table"] = "auto"
    weighting_table: list[list[float]] | None = None
    sid_alpha: float = 1.2       # SiD's default (notes A.2)
    # Generator-step noise: "sid" = t ~ U[0, tmax/1000] through the Karras schedule (sigma in [0.002, ~24.4]);
    # "lognormal" = EDM's training LogNormal(P_mean, P_std) (Diff-Instruct). "auto": lognormal for
    # diff_instruct, sid otherwise (notes A.3).
    sigma_sampling: Literal["auto", "sid", "lognormal"] = "auto"
    tmax: int = 800

    def validate(self, prefix: str = "loss") -> None:
        if self.method not in METHODS:
            raise ConfigError(f"{prefix}.method={self.method!r} is unknown; choose one of {', '.join(METHODS)}")
        if self.huber_c <= 0:
            raise ConfigError(f"{prefix}.huber_c={self.huber_c} must be positive")
        if not 0 < self.tmax <= 1000:
            raise ConfigError(f"{prefix}.tmax={self.tmax} must be in (0, 1000]")
        if self.weighting == "table":
            table = self.weighting_table or []
            if len(table) < 2 or any(len(row) != 2 or min(row) <= 0 for row in table) or \
                    any(a[0] >= b[0] for a, b in zip(table, table[1:])):
                raise ConfigError(f"{prefix}.weighting_table must hold two or more [sigma, w] pairs, both positive, "
                                  f"sigma increasing (weighting: table); got {self.weighting_table!r}")

    def resolved_weighting(self) -> str:
        if self.weighting != "auto":
            return self.weighting
        return "sigma2" if self.method == "sim_phuber" else "sid"

    def resolved_sampling(self) -> str:
        if self.sigma_sampling != "auto":
            return self.sigma_sampling
        return "lognormal" if self.method == "diff_instruct" else "sid"


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).flatten(1).sum(1)


def _per_sample(sigma: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device)
    return sigma.expand(x.shape[0]) if sigma.dim() == 0 else sigma.reshape(x.shape[0])


def sid_normaliser(x_g: torch.Tensor, f_phi: torch.Tensor) -> torch.Tensor:
    """SiD's per-sample mean |x_g - f_phi(x_t)| (no gradient, floored at 1e-5; notes A.2)."""
    return (x_g - f_phi).detach().abs().flatten(1).mean(1).clamp_min(1e-5)


def sim_weight(kind: str, sigma: torch.Tensor, x_g: torch.Tensor, f_phi: torch.Tensor,
               table: list[list[float]] | None = None) -> torch.Tensor:
    """w(sigma) per sample: sigma^2, SiD's sigma^4 / (2 mean|x_g - f_phi|), or read off ``table``."""
    if kind == "sigma2":
        return sigma ** 2
    if kind == "sid":
        return sigma ** 4 / (2 * sid_normaliser(x_g, f_phi))
    if kind == "table" and table:
        return table_weight(table, sigma)
    raise ConfigError(f"loss.weighting={kind!r} is unknown; choose sigma2, sid or table (with weighting_table)")


def table_weight(table: list[list[float]], sigma: torch.Tensor) -> torch.Tensor:
    """w(sigma) from [sigma, w] pairs, linear in (log sigma, log w) between them, held at the ends."""
    knots = torch.tensor(table, dtype=torch.float64).log()
    pos = sigma.detach().double().log().clamp(knots[0, 0], knots[-1, 0])
    i = torch.searchsorted(knots[:, 0].contiguous(), pos).clamp(1, len(knots) - 1)
    x0, x1, y0, y1 = knots[i - 1, 0], knots[i, 0], knots[i - 1, 1], knots[i, 1]
    return (y0 + (pos - x0) / (x1 - x0) * (y1 - y0)).exp().to(sigma.dtype)


def sim_loss(x_g: torch.Tensor, f_phi: torch.Tensor, f_psi: torch.Tensor, sigma: torch.Tensor | float,
             distance: Literal["phuber", "l2"], c: float = 1e-3, weighting: str = "sigma2",
             table: list[list[float]] | None = None) -> torch.Tensor:
    """L_SIM per sample (notes A.2, in denoiser units; see the module docstring)."""
    s = _per_sample(sigma, x_g)
    delta = f_phi - f_psi
    transport = _dot(delta, f_psi - x_g)
    if distance == "l2":
        core = 2 * transport / s ** 4
    elif distance == "phuber":
        core = transport / (s ** 2 * (delta.flatten(1).pow(2).sum(1) + (c * s ** 2) ** 2).sqrt())
    else:
        raise ConfigError(f"SIM distance {distance!r} is unknown; choose phuber or l2")
    return sim_weight(weighting, s, x_g, f_phi, table) * core


def sid_loss(x_g: torch.Tensor, f_phi: torch.Tensor, f_psi: torch.Tensor, alpha: float = 1.2) -> torch.Tensor:
    """SiD's generator loss per sample (Zhou et al. 2024; notes A.2):
    Delta^T [(f_phi - x_g) - alpha Delta] / mean|x_g - f_phi|."""
    delta = f_phi - f_psi
    return _dot(delta, (f_phi - x_g) - alpha * delta) / sid_normaliser(x_g, f_phi)


def diff_instruct_loss(x_g: torch.Tensor, f_phi: torch.Tensor, f_psi: torch.Tensor) -> torch.Tensor:
    """Diff-Instruct's surrogate per sample (notes A.3): (f_psi - f_phi)^T x_g with both denoisers frozen, so
    d/dx_g = f_psi - f_phi: the reverse-KL (DMD-type) direction, weight 1 in denoiser units."""
    return _dot((f_psi - f_phi).detach(), x_g)


def generator_loss(cfg: LossConfig, x_g: torch.Tensor, f_phi: torch.Tensor, f_psi: torch.Tensor,
                   sigma: torch.Tensor) -> torch.Tensor:
    """The configured method's per-sample generator loss."""
    if cfg.method == "sim_phuber":
        return sim_loss(x_g, f_phi, f_psi, sigma, "phuber", cfg.huber_c, cfg.resolved_weighting(),
                        cfg.weighting_table)
    if cfg.method == "sim_l2":
        return sim_loss(x_g, f_phi, f_psi, sigma, "l2", cfg.huber_c, cfg.resolved_weighting(), cfg.weighting_table)
    if cfg.method == "sid":
        return sid_loss(x_g, f_phi, f_psi, cfg.sid_alpha)
    return diff_instruct_loss(x_g, f_phi, f_psi)


def sample_generator_sigma(n: int, cfg: LossConfig, edm: EDMConfig, device: torch.device | str = "cpu") -> torch.Tensor:
    """The generator step's sigma (notes A.3): SiD's t ~ U[0, tmax/1000] mapped through the Karras schedule,
    sigma = (sigma_max^(1/rho) + (1 - t)(sigma_min^(1/rho) - sigma_max^(1/rho)))^rho, or EDM's log-normal."""
    if cfg.resolved_sampling() == "lognormal":
        return sample_training_sigma(n, edm, device)
    t = torch.rand(n, device=device) * (cfg.tmax / 1000)
    inv = 1 / edm.rho
    return (edm.sigma_max ** inv + (1 - t) * (edm.sigma_min ** inv - edm.sigma_max ** inv)) ** edm.rho
