"""The per-noise-level gradient probe (sim.profile), the matched weighting it gives, and the claims over runs."""

from __future__ import annotations

import math

import pytest
import torch

from fmrecipes.sim.config import DistillConfig, GaussianProbe, SimConfig, distill_runs
from fmrecipes.sim.edm import EDMConfig
from fmrecipes.sim.losses import LossConfig, generator_loss, table_weight
from fmrecipes.sim.profile import (
    gradient_profile,
    level_shares,
    matched_weighting,
    probe_sigmas,
    profiles,
    with_matched_run,
)

EDM, PROBE, DIM = EDMConfig(), GaussianProbe(batch=64), 64


def test_table_weight_interpolates_in_log_log_and_holds_the_ends():
    table = [[0.1, 1.0], [1.0, 100.0], [10.0, 100.0]]
    sigma = torch.tensor([0.01, 0.1, math.sqrt(0.1), 1.0, 5.0, 50.0])
    assert table_weight(table, sigma).tolist() == pytest.approx([1.0, 1.0, 10.0, 100.0, 100.0, 100.0])


def test_a_weighting_table_is_checked():
    from fmrecipes.errors import ConfigError

    for bad in (None, [[1.0, 2.0]], [[1.0, 2.0], [0.5, 1.0]], [[1.0, -2.0], [2.0, 1.0]]):
        with pytest.raises(ConfigError, match="weighting_table"):
            LossConfig("sim_l2", weighting="table", weighting_table=bad).validate()


@pytest.mark.parametrize("sigma", [0.05, 1.0, 20.0])
def test_the_probe_gradient_equals_its_closed_form(sigma):
    """SIM-L2 under w = sigma^2 on the Gaussian pair, by hand: per sample 2/sigma^2 Delta.(f_psi - x_g) with
    f_phi = a x_t, f_psi = m + b (x_t - m) (m, b frozen), x_t = x_g + sigma eps, x_g = mu + s z; so
    d/dx_g = 2/sigma^2 [(a - b)(f_psi - x_g) + (b - 1) Delta] (x_t live into both denoisers), and the chain rule to
    mu (identity) and log s (s z)."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(PROBE.batch, DIM, generator=g, dtype=torch.float64)
    eps = torch.randn(PROBE.batch, DIM, generator=g, dtype=torch.float64)
    m, s = PROBE.generator_shift, PROBE.generator_std
    a, b = PROBE.data_std ** 2 / (PROBE.data_std ** 2 + sigma ** 2), s ** 2 / (s ** 2 + sigma ** 2)
    x_g = m + s * z
    x_t = x_g + sigma * eps
    f_psi = m + b * (x_t - m)
    delta = a * x_t - f_psi
    d_xg = 2 / sigma ** 2 * ((a - b) * (f_psi - x_g) + (b - 1) * delta) / PROBE.batch
    want = math.sqrt(d_xg.sum(0).pow(2).sum().item() + (d_xg * s * z).sum().item() ** 2)
    got = gradient_profile(LossConfig("sim_l2", weighting="sigma2"), [sigma], PROBE, DIM)[0]
    assert got == pytest.approx(want, rel=1e-9)


def test_the_pseudo_huber_gradient_grows_against_l2s_with_sigma_at_the_same_weighting():
    """For the same w(sigma) the PH / L2 gradient ratio grows with the noise level (PH normalises by ||Delta||,
    which shrinks with sigma): the reason the 2x2's cells spread their updates so differently."""
    sigmas = probe_sigmas(PROBE, EDM)
    ph = gradient_profile(LossConfig("sim_phuber"), sigmas, PROBE, DIM)
    l2 = gradient_profile(LossConfig("sim_l2", weighting="sigma2"), sigmas, PROBE, DIM)
    ratio = [a / b for a, b in zip(ph, l2)]
    assert ratio[-1] > 1e3 * ratio[0]
    assert all(b > a for a, b in zip(ratio[4:], ratio[5:]))  # rising over the upper levels


def test_the_matched_weighting_gives_l2_the_pseudo_hubers_gradient_per_level():
    sigmas = probe_sigmas(PROBE, EDM)
    ph = LossConfig("sim_phuber", huber_c=1e-2)
    table = matched_weighting(ph, LossConfig("sim_l2"), PROBE, DIM, EDM)
    matched = LossConfig("sim_l2", weighting="table", weighting_table=table)
    assert gradient_profile(matched, sigmas, PROBE, DIM) == pytest.approx(gradient_profile(ph, sigmas, PROBE, DIM),
                                                                          rel=1e-6)
    unmatched = gradient_profile(LossConfig("sim_l2"), sigmas, PROBE, DIM)
    assert unmatched != pytest.approx(gradient_profile(ph, sigmas, PROBE, DIM), rel=0.5)


def test_level_shares_follow_where_each_method_samples_sigma():
    """SiD's sigma sampling stops at about 24.4: the top level (80) gets no share; a share sums to 1; the probe is
    the same z and eps at every level, so a run's profile is deterministic."""
    sigmas = probe_sigmas(PROBE, EDM)
    loss = LossConfig("sim_phuber")
    grads = gradient_profile(loss, sigmas, PROBE, DIM)
    assert grads == gradient_profile(loss, sigmas, PROBE, DIM)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    shares = level_shares(loss, EDM, sigmas, grads)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's random stream is left where it was
    assert shares == level_shares(loss, EDM, sigmas, grads)  # seeded
    assert sum(shares) == pytest.approx(1.0) and shares[-1] == 0.0 and min(shares) >= 0
    lognormal = level_shares(LossConfig("diff_instruct"), EDM, sigmas, [1.0] * len(sigmas))
    assert sigmas[lognormal.index(max(lognormal))] == pytest.approx(0.4, rel=0.3)  # exp(P_mean) = 0.30


def test_the_matched_run_joins_the_distillations_and_every_run_is_probed():
    base = DistillConfig(steps=10, batch_size=8)
    runs = with_matched_run(distill_runs(base, ["sim_phuber", "sim_l2", "sid"], [], []), PROBE, DIM, EDM)
    assert list(runs) == ["sim_phuber", "sim_l2", "sid", "sim_l2_wmatched"]
    loss = runs["sim_l2_wmatched"].loss
    assert loss.method == "sim_l2" and loss.weighting == "table" and len(loss.weighting_table) == PROBE.levels
    assert with_matched_run({"sid": base}, PROBE, DIM, EDM) == {"sid": base}
    probes = profiles(runs, PROBE, DIM, EDM)
    assert probes["sim_l2_wmatched"]["share_above_sigma1"] == pytest.approx(
        probes["sim_phuber"]["share_above_sigma1"], rel=1e-6)
    x = torch.randn(3, 4)
    sigma = torch.tensor([0.1, 1.0, 10.0])
    want = generator_loss(LossConfig("sim_l2", weighting="sigma2"), x, x + 1, x + 0.5, sigma) / sigma ** 2 * \
        table_weight(loss.weighting_table, sigma)
    assert generator_loss(loss, x, x + 1, x + 0.5, sigma) == pytest.approx(want, rel=1e-5)


def test_every_image_claim_compares_runs_the_full_preset_makes():
    """The claims name runs by key (fd_tail.<run>): each must be a run that distill_runs makes in `full`, so a
    renamed run cannot leave a claim unmeasured."""
    from conftest import ROOT

    from fmrecipes.config import load
    from fmrecipes.sim.paper import CLAIMS

    ic = load(SimConfig, ROOT / "configs/sim/full.yaml").images
    runs = with_matched_run(distill_runs(ic.distill, SimConfig().methods, ic.huber_c_ablation, ic.weighting_ablation),
                            ic.profile, DIM, EDM)
    named = [key.split(".", 1)[1] for c in CLAIMS for key in (c.a, c.b) if key.startswith(("fd_tail.", "fd.sim"))]
    assert "sim_l2_wmatched" in named and "sim_phuber_c1e-01" in named
    assert set(named) <= set(runs)
