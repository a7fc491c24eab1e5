"""Sample-quality metrics: 2-D mixtures (modes, high-quality fraction, energy distance) and images
(Frechet distance on a classifier's features, k-NN precision/recall, class coverage). SIM notes A.7.3-A.7.4.
"""

from __future__ import annotations

import torch

from .gmm import GaussianMixture


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """2 E|X - Y| - E|X - X'| - E|Y - Y'| (Szekely-Rizzo; V-statistics)."""
    x, y = x.double(), y.double()
    return (2 * torch.cdist(x, y).mean() - torch.cdist(x, x).mean() - torch.cdist(y, y).mean()).item()


def toy_metrics(samples: torch.Tensor, gmm: GaussianMixture, reference: torch.Tensor, n_std: float = 3.0,
                min_share: float = 0.25) -> dict[str, float]:
    """``modes``: components holding at least ``min_share`` of their expected share of high-quality samples;
    ``hq``: fraction of samples within ``n_std`` standard deviations of their nearest mean (VEEGAN-style);
    ``energy``: energy distance to ``reference`` samples of the mixture."""
    x = samples.double()
    dist = torch.cdist(x, gmm.means)
    nearest = dist.argmin(1)
    good = dist.gather(1, nearest[:, None]).squeeze(1) <= n_std * gmm.stds[nearest]
    counts = torch.bincount(nearest[good], minlength=len(gmm.weights)).double()
    covered = counts >= min_share * gmm.weights * len(x)
    finite = torch.isfinite(x).all(1)
    return {"modes": int(covered.sum()), "hq": good.double().mean().item(),
            "energy": energy_distance(x[finite], reference) if finite.any() else float("nan")}


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)), the FID formula on any features."""
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = torch.cov(a.T), torch.cov(b.T)
    evals, evecs = torch.linalg.eigh(s_a)
    root_a = evecs @ torch.diag(evals.clamp_min(0).sqrt()) @ evecs.T
    cross = torch.linalg.eigvalsh(root_a @ s_b @ root_a).clamp_min(0).sqrt().sum()
    return ((mu_a - mu_b).pow(2).sum() + s_a.trace() + s_b.trace() - 2 * cross).item()


def _kth_radius(x: torch.Tensor, k: int) -> torch.Tensor:
    d = torch.cdist(x, x)
    return d.kthvalue(k + 1, dim=1).values  # +1: the point itself is its own nearest neighbour


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019): the fraction of fake features inside the
    real k-NN manifold, and of real features inside the fake one."""
    real, fake = real.double(), fake.double()
    r_real, r_fake = _kth_radius(real, k), _kth_radius(fake, k)
    cross = torch.cdist(fake, real)
    precision = (cross <= r_real[None, :]).any(1).double().mean().item()
    recall = (cross.T <= r_fake[None, :]).any(1).double().mean().item()
    return precision, recall


def class_coverage(predicted: torch.Tensor, num_classes: int, min_share: float = 0.25) -> int:
    """Classes that the classifier assigns to at least ``min_share`` of the uniform share of samples."""
    counts = torch.bincount(predicted, minlength=num_classes).double()
    return int((counts >= min_share * len(predicted) / num_classes).sum())
