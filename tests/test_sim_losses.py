"""SIM's generator loss against the exact gradient of the score divergence (SIM notes A.2, A.7.1).

An affine generator x0 = mu + A z and a Gaussian teacher N(m, S) make every score analytic. The divergence
D(theta) = w E_{x ~ sg[q_theta,sigma]} d(s_p(x) - s_q_theta(x)) and L_SIM are both integrated by Gauss-Hermite
quadrature, so the comparison is exact up to quadrature error, not Monte Carlo noise.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from fmrecipes.sim.losses import LossConfig, diff_instruct_loss, generator_loss, sid_loss, sim_loss

F64 = torch.float64
M = torch.tensor([0.3, -0.2], dtype=F64)
S = torch.tensor([[0.5, 0.2], [0.2, 0.3]], dtype=F64)
MU0 = torch.tensor([-0.4, 0.5], dtype=F64)
A0 = torch.tensor([[0.9, 0.1], [-0.3, 0.4]], dtype=F64)


@pytest.fixture(autouse=True)
def float64():
    """Every tensor here in float64 (set per test, restored after: other test modules keep float32)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(F64)
    yield
    torch.set_default_dtype(old)


def _gauss_hermite(dims: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes [n^dims, dims] and weights (summing to 1) for E over N(0, I_dims)."""
    x, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / w.sum()
    nodes = torch.tensor(list(itertools.product(x, repeat=dims)))
    weights = torch.tensor([np.prod(c) for c in itertools.product(w, repeat=dims)])
    return nodes, weights


def _teacher(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """f_phi(x) = x + sigma^2 s_p(x) for the Gaussian teacher."""
    cov = S + sigma ** 2 * torch.eye(2)
    return x - sigma ** 2 * torch.linalg.solve(cov, (x - M).T).T


def _fake(x: torch.Tensor, sigma: float, mu: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    cov = a @ a.T + sigma ** 2 * torch.eye(2)
    return x - sigma ** 2 * torch.linalg.solve(cov, (x - mu).T).T


def _distance(y: torch.Tensor, kind: str, c: float) -> torch.Tensor:
    sq = (y ** 2).sum(1)
    return sq if kind == "l2" else (sq + c ** 2).sqrt() - c


def exact_divergence_grad(sigma: float, kind: str, c: float) -> torch.Tensor:
    """d/dtheta of sigma^2 E_{x ~ sg[q]} d(s_p(x) - s_q_theta(x)): the samples are fixed, theta moves s_q."""
    mu, a = MU0.clone().requires_grad_(), A0.clone().requires_grad_()
    u, w = _gauss_hermite(2, 60)
    chol = torch.linalg.cholesky(A0 @ A0.T + sigma ** 2 * torch.eye(2))
    x = MU0 + u @ chol.T
    y = (_teacher(x, sigma) - _fake(x, sigma, mu, a)) / sigma ** 2
    (sigma ** 2 * (w * _distance(y, kind, c)).sum()).backward()
    return torch.cat([mu.grad, a.grad.flatten()])


def sim_grad(sigma: float, kind: str, c: float, detach_dprime: bool = False) -> torch.Tensor:
    """Autograd gradient of the library's L_SIM (weighting sigma^2), integrated over (z, eps)."""
    mu, a = MU0.clone().requires_grad_(), A0.clone().requires_grad_()
    nodes, w = _gauss_hermite(4, 14)
    z, eps = nodes[:, :2], nodes[:, 2:]
    x_g = mu + z @ a.T
    x_t = x_g + sigma * eps
    f_phi = _teacher(x_t, sigma)
    f_psi = _fake(x_t, sigma, MU0, A0)   # fake-score parameters frozen, input live
    if detach_dprime:                    # the wrong variant: d'(y) as a constant
        f_phi = f_psi + (f_phi - f_psi).detach()
    per = sim_loss(x_g, f_phi, f_psi, sigma, kind, c, weighting="sigma2")
    (w * per).sum().backward()
    return torch.cat([mu.grad, a.grad.flatten()])


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("sigma", [0.3, 1.0, 2.5])
@pytest.mark.parametrize("kind,c_denoiser", [("phuber", 0.2), ("phuber", 1.0), ("l2", 0.0)])
def test_sim_gradient_equals_score_divergence_gradient(sigma, kind, c_denoiser):
    # c in score units is c_denoiser / sigma^2 (notes A.2): a kink much narrower than the quadrature grid's
    # spacing would need far more nodes (at sigma = 0.3, c = 0.5 converges only to 1.7e-3 with 26^4 nodes).
    c = c_denoiser / sigma ** 2
    exact = exact_divergence_grad(sigma, kind, c)
    assert exact.norm() > 1e-3
    assert _rel(sim_grad(sigma, kind, c), exact) < 1e-3


@pytest.mark.parametrize("sigma", [0.3, 1.0])
def test_detaching_dprime_fails_the_gradient_check(sigma):
    """Proves the check above can fail: d'(y) treated as a constant gives the wrong gradient (notes A.2)."""
    exact = exact_divergence_grad(sigma, "phuber", 0.5)
    assert _rel(sim_grad(sigma, "phuber", 0.5, detach_dprime=True), exact) > 0.05


def test_sim_loss_hand_values():
    x_g = torch.tensor([[1.0, 0.0]])
    f_phi, f_psi = torch.tensor([[0.5, 0.5]]), torch.tensor([[0.2, 0.1]])
    delta, resid = torch.tensor([0.3, 0.4]), torch.tensor([-0.8, 0.1])  # ||delta|| = 0.5
    s, c = 2.0, 0.1
    transport = float(delta @ resid)  # -0.2
    ph = sim_loss(x_g, f_phi, f_psi, s, "phuber", c, "sigma2")
    assert ph.item() == pytest.approx(s ** 2 * transport / (s ** 2 * (0.25 + (c * s ** 2) ** 2) ** 0.5))
    l2 = sim_loss(x_g, f_phi, f_psi, s, "l2", c, "sigma2")
    assert l2.item() == pytest.approx(s ** 2 * 2 * transport / s ** 4)


def test_sim_l2_is_sid_at_alpha_one_under_sid_weighting():
    """notes A.2: SIM-L2 = SiD(alpha = 1) with w = sigma^4 / (2 mean|x_g - f_phi|): values and gradients."""
    g = torch.Generator().manual_seed(0)
    x_g = torch.randn(6, 3, 4, 4, generator=g, requires_grad=True)
    sigma = torch.rand(6, generator=g) * 3 + 0.1
    phi_w, psi_w = torch.randn(2, 3, 4, 4, generator=g)
    x_t = x_g + sigma[:, None, None, None] * torch.randn(6, 3, 4, 4, generator=g)
    f_phi, f_psi = torch.tanh(x_t * phi_w), torch.tanh(x_t * psi_w)
    a = sim_loss(x_g, f_phi, f_psi, sigma, "l2", weighting="sid")
    b = sid_loss(x_g, f_phi, f_psi, alpha=1.0)
    torch.testing.assert_close(a, b)
    ga = torch.autograd.grad(a.sum(), x_g, retain_graph=True)[0]
    gb = torch.autograd.grad(b.sum(), x_g)[0]
    torch.testing.assert_close(ga, gb)


def test_sid_alpha_adds_minus_delta_squared():
    """SiD(alpha) = SiD(1) - (alpha - 1) ||Delta||^2 / mean|x_g - f_phi| (notes A.2)."""
    x_g, f_phi, f_psi = torch.randn(3, 5), torch.randn(3, 5), torch.randn(3, 5)
    norm = (x_g - f_phi).abs().mean(1)
    extra = ((f_phi - f_psi) ** 2).sum(1) / norm
    torch.testing.assert_close(sid_loss(x_g, f_phi, f_psi, 1.2), sid_loss(x_g, f_phi, f_psi, 1.0) - 0.2 * extra)


def test_diff_instruct_gradient_is_fake_minus_teacher():
    x_g = torch.randn(4, 3, requires_grad=True)
    f_phi, f_psi = torch.randn(4, 3, requires_grad=True), torch.randn(4, 3, requires_grad=True)
    diff_instruct_loss(x_g, f_phi, f_psi).sum().backward()
    torch.testing.assert_close(x_g.grad, (f_psi - f_phi).detach())
    assert f_phi.grad is None and f_psi.grad is None


def test_generator_loss_dispatch_and_defaults():
    x_g, f_phi, f_psi, s = torch.randn(2, 4), torch.randn(2, 4), torch.randn(2, 4), torch.tensor([0.5, 2.0])
    torch.testing.assert_close(generator_loss(LossConfig("sim_l2"), x_g, f_phi, f_psi, s),
                               sid_loss(x_g, f_phi, f_psi, 1.0))
    torch.testing.assert_close(generator_loss(LossConfig("sid"), x_g, f_phi, f_psi, s),
                               sid_loss(x_g, f_phi, f_psi, 1.2))
    assert LossConfig("sim_phuber").resolved_weighting() == "sigma2"
    assert LossConfig("diff_instruct").resolved_sampling() == "lognormal"
    assert LossConfig("sim_phuber").resolved_sampling() == "sid"
