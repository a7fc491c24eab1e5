"""sim: EDM pieces, the exact mixture teacher, the diffusers wrapper, metrics, distillation and the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import ROOT, run_cli

from fmrecipes.core.dist import DistEnv, RunConfig
from fmrecipes.core.train import example_generator
from fmrecipes.errors import ConfigError
from fmrecipes.sim.config import DistillConfig
from fmrecipes.sim.distill import distill, one_step
from fmrecipes.sim.edm import (
    DDPMEpsDenoiser,
    EDMConfig,
    EDMPrecond,
    edm_loss,
    karras_sigmas,
    sample_nfe,
)
from fmrecipes.sim.gmm import make_toy, ring
from fmrecipes.sim.losses import LossConfig, sample_generator_sigma
from fmrecipes.sim.nets import NetConfig, scaled
from fmrecipes.sim.quality import (
    class_coverage,
    energy_distance,
    frechet_distance,
    precision_recall,
    toy_metrics,
)
from fmrecipes.sim.teacher import NoisedData, TensorData, build_denoiser, train_denoiser

SMOKE = ROOT / "configs" / "sim" / "smoke.yaml"
EDM = EDMConfig()


class ConstNet(torch.nn.Module):
    def __init__(self, value: float):
        super().__init__()
        self.value = value

    def forward(self, x, c_noise, class_labels=None):
        return torch.full_like(x, self.value)


def test_edm_preconditioning_hand_values():
    sigma, sd = 2.0, 0.5
    x = torch.tensor([[1.0, -2.0]])
    out = EDMPrecond(ConstNet(3.0), sd)(x, sigma)
    c_skip = sd ** 2 / (sigma ** 2 + sd ** 2)
    c_out = sigma * sd / math.sqrt(sigma ** 2 + sd ** 2)
    torch.testing.assert_close(out, c_skip * x + c_out * 3.0)


def test_edm_loss_matches_hand_computation():
    model = EDMPrecond(ConstNet(0.25), 0.5)
    x0 = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(7)
    loss = edm_loss(model, x0, EDM)
    torch.manual_seed(7)
    sigma = (EDM.P_mean + EDM.P_std * torch.randn(5)).exp()[:, None]
    x = x0 + sigma * torch.randn_like(x0)
    weight = (sigma ** 2 + 0.25) / (sigma * 0.5) ** 2
    expected = (weight * (model(x, sigma.flatten()) - x0) ** 2).mean()
    torch.testing.assert_close(loss, expected)


def test_teacher_noise_is_drawn_per_example_sigma_first_then_noise():
    """NoisedData: example i's sigma and noise come from its own stream (core.train.example_generator), the
    sigma's normal first, so a batch's rows do not depend on which other examples share it (N processes = one)."""
    data = NoisedData(TensorData(torch.randn(6, 1, 2, 2)), EDM)
    torch.manual_seed(11)
    batch = data.batch(torch.tensor([4, 1, 4]))
    torch.manual_seed(11)
    alone = data.batch(torch.tensor([1]))
    for row, i in enumerate((4, 1, 4)):
        torch.manual_seed(11)
        g = example_generator(i)
        sigma = (EDM.P_mean + EDM.P_std * torch.randn(1, generator=g)).exp()
        torch.testing.assert_close(batch["sigma"][row:row + 1], sigma, rtol=0, atol=0)
        torch.testing.assert_close(batch["noise"][row], torch.randn(1, 2, 2, generator=g), rtol=0, atol=0)
    torch.testing.assert_close(alone["noise"][0], batch["noise"][1], rtol=0, atol=0)
    assert batch["sigma"].shape == (3,) and batch["x"].shape == (3, 1, 2, 2)


def test_scaled_networks_multiply_every_width():
    unet = NetConfig(kind="unet", channels=[16, 32, 64], layers_per_block=2)
    assert scaled(unet, 0.5) == NetConfig(kind="unet", channels=[8, 16, 32], layers_per_block=2)
    assert scaled(unet, 1.5).channels == [24, 48, 96]
    assert scaled(NetConfig(hidden=256, depth=3), 0.5) == NetConfig(hidden=128, depth=3)
    with pytest.raises(ConfigError, match="must be positive"):
        scaled(unet, 0)


def test_karras_sigmas_endpoints():
    s = karras_sigmas(18, EDM)
    assert s[0].item() == pytest.approx(80.0) and s[-2].item() == pytest.approx(0.002) and s[-1] == 0
    assert torch.all(s[:-1] > s[1:])


def test_samplers_count_nfe_and_solve_the_gaussian_ode():
    """Data N(0, s^2): D(x; sigma) = s^2 / (s^2 + sigma^2) x, and the ODE maps sigma_max z to ~s z."""
    s, calls = 0.7, []

    def denoiser(x, sigma, class_labels=None):
        calls.append(1)
        return s ** 2 / (s ** 2 + sigma ** 2) * x

    z = torch.randn(1000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    exact = s * z * EDM.sigma_max / math.sqrt(s ** 2 + EDM.sigma_max ** 2)
    errors = {}
    for nfe in (1, 2, 4, 8, 18, 35, 36, 71, 401):
        calls.clear()
        out = sample_nfe(denoiser, z, nfe, EDM)
        assert len(calls) == nfe
        errors[nfe] = ((out - exact).norm() / exact.norm()).item()
    assert errors[401] < 1e-3
    assert errors[35] < errors[18] < errors[8] < errors[4]
    assert 3.5 < errors[35] / errors[71] < 5.0     # Heun (odd NFE): 2nd order, doubling the steps quarters it
    assert 1.7 < errors[18] / errors[36] < 2.3     # Euler: 1st order


def test_gmm_denoiser_is_tweedie_of_the_exact_density():
    """D(x; sigma) = x + sigma^2 grad log p_sigma(x), with p_sigma written out by torch.distributions."""
    gmm = ring(8, 1.0, 0.1)
    sigma = 0.3
    x = torch.randn(16, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).requires_grad_()
    comps = torch.distributions.MultivariateNormal(gmm.means, (0.1 ** 2 + sigma ** 2) * torch.eye(2).expand(8, 2, 2))
    mix = torch.distributions.MixtureSameFamily(torch.distributions.Categorical(gmm.weights), comps)
    grad = torch.autograd.grad(mix.log_prob(x).sum(), x)[0]
    torch.testing.assert_close(gmm(x.detach(), sigma), x.detach() + sigma ** 2 * grad)


def test_gmm_samples_and_unknown_toy():
    gmm = make_toy("grid25", 0.05)
    x, comp = gmm.sample(500, torch.Generator().manual_seed(0))
    assert x.shape == (500, 2) and comp.max() < 25
    assert ((x.double() - gmm.means[comp]).norm(dim=1) < 0.5).all()
    with pytest.raises(Exception, match="toy='moons' is unknown"):
        make_toy("moons", 0.05)


def test_ddpm_eps_wrapper_matches_diffusers_x0_prediction():
    """The EDM view of an eps-prediction UNet (notes A.4) equals DDPMScheduler's predicted x0 at table sigmas."""
    from diffusers import DDPMScheduler, UNet2DModel

    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=8, in_channels=3, out_channels=3, block_out_channels=(8, 16),
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                       layers_per_block=1, norm_num_groups=4).eval()
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="linear", beta_start=1e-4, beta_end=0.02,
                              clip_sample=False, prediction_type="epsilon")
    denoiser = DDPMEpsDenoiser(unet, channels=3)
    for t in (10, 500, 990):
        alpha_bar = scheduler.alphas_cumprod[t].double()
        sigma = ((1 - alpha_bar) / alpha_bar).sqrt().float()
        x = torch.randn(2, 3, 8, 8) * math.sqrt(1 + sigma.item() ** 2)   # EDM's x = x0 + sigma n
        x_t = x * alpha_bar.sqrt().float()                                # DDPM's x_t = sqrt(abar) x
        with torch.no_grad():
            eps = unet(x_t, t).sample
            reference = scheduler.step(eps, t, x_t).pred_original_sample
            ours = denoiser(x, sigma.expand(2))
        assert denoiser.timestep(sigma.reshape(1)).item() == t
        torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-4)


def test_generator_sigma_sampling_ranges():
    torch.manual_seed(0)
    s = sample_generator_sigma(20000, LossConfig("sim_phuber"), EDM)
    assert s.min() >= 0.002 - 1e-6 and s.max() <= 24.5
    t_max_sigma = (80 ** (1 / 7) + 0.2 * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
    assert s.max().item() == pytest.approx(t_max_sigma, rel=0.02)
    d = sample_generator_sigma(20000, LossConfig("diff_instruct"), EDM)
    assert d.log().mean().item() == pytest.approx(EDM.P_mean, abs=0.05)


def test_toy_metrics_on_exact_and_collapsed_samples():
    gmm = ring(8, 1.0, 0.05)
    ref = gmm.sample(800, torch.Generator().manual_seed(1))[0]
    good = toy_metrics(gmm.sample(800, torch.Generator().manual_seed(2))[0], gmm, ref)
    assert good["modes"] == 8 and good["hq"] > 0.95 and good["energy"] < 0.01
    collapsed = gmm.means[:1].float().expand(800, 2)
    bad = toy_metrics(collapsed, gmm, ref)
    assert bad["modes"] == 1 and bad["hq"] == 1.0 and bad["energy"] > 0.3


def test_energy_distance_hand_value():
    x, y = torch.tensor([[0.0], [2.0]]), torch.tensor([[1.0], [1.0]])
    # 2 E|X-Y| = 2, E|X-X'| = (0 + 2 + 2 + 0) / 4 = 1, E|Y-Y'| = 0
    assert energy_distance(x, y) == pytest.approx(1.0)


def test_frechet_distance_against_scipy():
    from scipy import linalg

    g = torch.Generator().manual_seed(0)
    a = torch.randn(400, 6, generator=g, dtype=torch.float64)
    b = torch.randn(400, 6, generator=g, dtype=torch.float64) @ torch.randn(6, 6, generator=g, dtype=torch.float64)
    b = b + 0.5
    mu_a, mu_b = a.mean(0).numpy(), b.mean(0).numpy()
    s_a, s_b = np.cov(a.numpy().T), np.cov(b.numpy().T)
    expected = ((mu_a - mu_b) ** 2).sum() + np.trace(s_a + s_b - 2 * linalg.sqrtm(s_a @ s_b).real)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_precision_recall_and_class_coverage_hand_cases():
    real = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert precision_recall(real, real.clone(), k=1) == (1.0, 1.0)
    far = real + 10.0
    assert precision_recall(real, far, k=1) == (0.0, 0.0)
    # two fakes near (0, 0), a tight pair (radius 0.1), two far away: the real balls (radius 1) hold the near
    # two; the fake balls hold only the real point (0, 0)
    mixed = torch.tensor([[0.0, 0.0], [0.1, 0.0], [10.0, 10.0], [10.0, 10.1]])
    assert precision_recall(real, mixed, k=1) == (0.5, 0.25)
    assert class_coverage(torch.tensor([0] * 50 + [1] * 40 + [2] * 10), 10) == 3
    assert class_coverage(torch.tensor([0] * 98 + [1] * 2), 10) == 1  # 2 < a quarter of the uniform 10


def _tiny_toy_setup(tmp_path, init_steps=5, hidden=32, depth=1):
    from fmrecipes.core import dist
    from fmrecipes.core.train import TrainConfig

    gmm = ring(8, 1.0, 0.05)
    init = build_denoiser(NetConfig(hidden=hidden, depth=depth), (2,), EDM, seed=0)
    tcfg = TrainConfig(steps=init_steps, batch_size=128, micro_batch_size=128, lr=2e-3, warmup_steps=10,
                       weight_decay=0.0, grad_clip=None, beta2=0.999, log_every=50, ckpt_every=max(init_steps, 1))
    env = dist.setup(dist.RunConfig(device="cpu", precision="fp32", progress=False))
    data = TensorData(gmm.sample(5000, torch.Generator().manual_seed(0))[0])
    return gmm, train_denoiser(init, data, tcfg, EDM, tmp_path / "init", env)


def _distill(init, gmm, run_dir, steps, method="sim_phuber", evaluate=None, **kw):
    cfg = DistillConfig(steps=steps, batch_size=64, lr_generator=1e-3, lr_fake=1e-3, ema_halflife_images=2000,
                        eval_every=2, ckpt_every=3, loss=LossConfig(method), **kw)
    quiet = DistEnv(run=RunConfig(progress=False))
    return distill(init, gmm, lambda n: (torch.randn(n, 2), None), cfg, EDM, run_dir, quiet, evaluate)


@pytest.mark.parametrize("method,schedule", [("sim_phuber", "constant"), ("diff_instruct", "constant"),
                                             ("sim_phuber", "cosine")])
def test_distillation_resumes_exactly_after_a_kill(tmp_path, method, schedule):
    """A run killed between checkpoints (steps 3 and 6) and restarted equals an uninterrupted run (a decaying
    learning rate resumes where it was)."""
    gmm, init = _tiny_toy_setup(tmp_path)
    calls = []

    def evaluate(generator):  # called at steps 0, 2, 4, 6; the "kill" strikes at step 4
        calls.append(1)
        if kill and len(calls) == 3:
            raise KeyboardInterrupt
        return {"mean_norm": one_step(generator, torch.ones(1, 2), 2.5).norm().item()}

    kill = False
    whole = _distill(init, gmm, tmp_path / "whole", 6, method, evaluate, lr_schedule=schedule)
    kill, calls = True, []
    with pytest.raises(KeyboardInterrupt):
        _distill(init, gmm, tmp_path / "split", 6, method, evaluate, lr_schedule=schedule)
    (tmp_path / "split" / "metrics.jsonl").open("a").write('{"step": 5, "torn')  # a torn line from the kill
    kill = False
    resumed = _distill(init, gmm, tmp_path / "split", 6, method, evaluate, lr_schedule=schedule)
    for a, b in zip(whole.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)

    def read(d):
        return [json.loads(line) for line in (tmp_path / d / "metrics.jsonl").read_text().splitlines()]

    assert read("split") == read("whole") and [r["step"] for r in read("whole")] == [0, 2, 4, 6]


class NaNRows(torch.nn.Module):
    """A denoiser whose even-numbered outputs are NaN."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x, sigma, class_labels=None):
        out = self.inner(x, sigma, class_labels)
        bad = (torch.arange(len(x)) % 2 == 0).reshape(-1, 1)
        return torch.where(bad, torch.full_like(out, float("nan")), out)


def test_distillation_drops_nan_samples(tmp_path):
    """NaN guard (notes A.3): samples that a generator, the fake score or the teacher turns into NaN are
    dropped before the losses, and the step still trains on the rest."""
    gmm, init = _tiny_toy_setup(tmp_path)
    for name, start, teacher in (("generator", NaNRows(init), gmm), ("teacher", init, NaNRows(gmm))):
        generator = _distill(start, teacher, tmp_path / name, 2)
        assert all(torch.isfinite(p).all() for p in generator.parameters())
        assert any(not torch.equal(a, b) for a, b in zip(generator.parameters(), start.parameters())), name


def test_sim_distillation_moves_the_generator_to_the_ring(tmp_path):
    """Behaviour: 200 SIM-PH steps move the generator from a blob at the origin onto the ring (radius 1)."""
    gmm, init = _tiny_toy_setup(tmp_path, init_steps=300, hidden=64, depth=2)
    ref = gmm.sample(1000, torch.Generator().manual_seed(3))[0]
    z = torch.randn(1000, 2, generator=torch.Generator().manual_seed(4))
    generator = _distill(init, gmm, tmp_path / "sim", 200)
    with torch.no_grad():
        x0, x1 = one_step(init, z, 2.5), one_step(generator, z, 2.5)
    before, after = toy_metrics(x0, gmm, ref), toy_metrics(x1, gmm, ref)
    assert after["energy"] < before["energy"] / 3
    assert x0.norm(dim=1).mean() < 0.5 and abs(x1.norm(dim=1).mean() - 1.0) < 0.1  # the ring has radius 1


def test_images_resized_to_the_configured_resolution():
    from fmrecipes.sim.images import image_shape, load_images

    native, labels = load_images("digits", "test")
    x, y = load_images("digits", "test", resolution=16)
    assert x.shape == (len(native), *image_shape("digits", 16)) == (len(native), 1, 16, 16)
    assert torch.equal(y, labels) and x.min() >= -1 and x.max() <= 1
    # an antialiased upsampling keeps each image's mean grey level and its picture (pooling back recovers it)
    torch.testing.assert_close(x.mean((1, 2, 3)), native.mean((1, 2, 3)), atol=0.02, rtol=0)
    back = torch.nn.functional.avg_pool2d(x, 2)
    own, other = (back - native).abs().mean(), (back - native[torch.randperm(len(native))]).abs().mean()
    assert own < other / 3
    assert torch.equal(load_images("digits", "test", resolution=8)[0], native)


def test_images_to_reach_a_teacher_fd_is_the_first_crossing_or_censored():
    from fmrecipes.sim.distill import images_to_reach

    records = [{"step": 0, "images_seen": 0, "fd": 9.0}, {"step": 5, "images_seen": 320, "fd": 4.0},
               {"step": 10, "images_seen": 640, "fd": 2.5}, {"step": 15, "images_seen": 960, "fd": 3.1}]
    assert images_to_reach(records, "fd", 3.0) == 640 and images_to_reach(records, "fd", 4.0) == 320
    assert images_to_reach(records, "fd", 2.0) == "> 960" and images_to_reach([], "fd", 1.0) == "not evaluated"


def test_non_finite_gradients_are_replaced_as_sid_does():
    """SiD's training loop: nan_to_num(grad, nan=0, posinf=1e5, neginf=-1e5) before the optimizer step."""
    from fmrecipes.sim.distill import _adam_step

    w = torch.nn.Parameter(torch.zeros(4))
    opt = torch.optim.SGD([w], lr=1.0)
    grad = torch.tensor([1.0, float("nan"), float("inf"), float("-inf")])
    _adam_step((w * grad).sum(), _Holder(w), opt, DistEnv(run=RunConfig(progress=False)))
    assert w.detach().tolist() == [-1.0, 0.0, -1e5, 1e5]


class _Holder(torch.nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = w


def test_the_ema_half_life_scales_with_the_run():
    """ema_halflife_fraction sets the half-life to that share of the run's images, whatever the run's length;
    EDM's ramp caps it at ema_rampup x the images seen (the cap that kept a 32,000-image run's EMA at 25 steps),
    and a null ramp leaves the half-life whole from the first step."""
    from fmrecipes.sim.distill import ema_beta, ema_halflife

    edm_like = DistillConfig(steps=500, batch_size=64, ema_halflife_images=10_000, ema_rampup=0.05)
    assert ema_halflife(edm_like) == 10_000
    assert ema_beta(edm_like, 32_000) == pytest.approx(0.5 ** (64 / 1_600))  # capped at 5% of 32,000
    for steps in (500, 2000):
        scaled = DistillConfig(steps=steps, batch_size=64, ema_halflife_fraction=0.1, ema_rampup=None)
        assert ema_halflife(scaled) == pytest.approx(0.1 * steps * 64)
        assert ema_beta(scaled, 64) == ema_beta(scaled, steps * 64) == pytest.approx(0.5 ** (64 / (6.4 * steps)))
    ramped = DistillConfig(steps=500, batch_size=64, ema_halflife_fraction=0.1, ema_rampup=0.5)
    assert ema_beta(ramped, 3_200) == pytest.approx(0.5 ** (64 / 1_600))  # the ramp: half the images seen
    assert ema_beta(ramped, 32_000) == pytest.approx(0.5 ** (64 / 3_200))  # then the run's share


def test_the_learning_rate_decays_to_the_end_of_the_run(tmp_path, monkeypatch):
    """lr_schedule=cosine: both optimisers' rate goes from lr at the first step down to lr x min_lr_ratio at the
    last, step by step; constant keeps lr throughout (SiD)."""
    import fmrecipes.sim.distill as distill_module

    gmm, init = _tiny_toy_setup(tmp_path)
    seen = []
    real = distill_module._adam_step

    def record(loss, module, opt, env):
        seen.append(opt.param_groups[0]["lr"])
        return real(loss, module, opt, env)

    monkeypatch.setattr(distill_module, "_adam_step", record)
    _distill(init, gmm, tmp_path / "cos", 5, lr_schedule="cosine", min_lr_ratio=0.1)
    fake, gen = seen[0::2], seen[1::2]
    want = [1e-3 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * k / 4))) for k in range(5)]
    assert fake == pytest.approx(want) and gen == pytest.approx(want)
    seen.clear()
    _distill(init, gmm, tmp_path / "const", 3)
    assert seen == pytest.approx([1e-3] * 6)


def test_extrapolated_images_inverts_a_power_law_fitted_to_the_second_half():
    from fmrecipes.sim.distill import extrapolated_images

    # FD = 100 / sqrt(images) from 2000 images on: FD 1 at 10^4; the first half (a different law) is not fitted
    records = [{"images_seen": n, "fd": 1e6 if n <= 4000 else 100 / math.sqrt(n)} for n in range(0, 8001, 1000)]
    assert extrapolated_images(records, "fd", 1.0) == 10_000
    assert extrapolated_images(records, "fd", 0.5) == 40_000
    flat = [{"images_seen": n, "fd": 3.0 + n / 1e4} for n in range(0, 8001, 1000)]
    assert extrapolated_images(flat, "fd", 1.0) == "not decreasing"
    assert extrapolated_images(records[:1], "fd", 1.0) == "not evaluated"
    assert extrapolated_images(records, "fd", 0.2) == 250_000  # within 100x the run's 8,000 images
    assert extrapolated_images(records, "fd", 0.1) == "beyond 100x this run"  # 10^6 images: bounded
    slow = [{"images_seen": n, "fd": 5.0 * n ** -1e-3} for n in range(1000, 8001, 1000)]
    assert extrapolated_images(slow, "fd", 1.0) == "beyond 100x this run"  # would be 1e699: no overflow


def test_distill_runs_hold_one_thing_fixed_at_a_time():
    """The ablation runs change exactly one setting of their method's default: c for SIM-PH, the weighting for
    SIM-PH and SIM-L2 (the 2x2 of distance x weighting)."""
    from fmrecipes.sim.config import distill_runs, run_settings

    base = DistillConfig(loss=LossConfig(huber_c=1e-3))
    runs = distill_runs(base, ["sim_phuber", "sim_l2", "sid", "diff_instruct"], [0.1], ["sigma2", "sid"])
    assert list(runs) == ["sim_phuber", "sim_l2", "sid", "diff_instruct", "sim_phuber_c1e-01", "sim_phuber_wsid",
                          "sim_l2_wsigma2"]
    loss = {name: r.loss for name, r in runs.items()}
    assert loss["sim_phuber_wsid"] == LossConfig("sim_phuber", huber_c=1e-3, weighting="sid")
    assert loss["sim_l2_wsigma2"] == LossConfig("sim_l2", huber_c=1e-3, weighting="sigma2")
    assert loss["sim_phuber_c1e-01"] == LossConfig("sim_phuber", huber_c=0.1)
    weightings = {n: loss[n].resolved_weighting() for n in ("sim_phuber", "sim_phuber_wsid", "sim_l2",
                                                            "sim_l2_wsigma2")}
    assert weightings == {"sim_phuber": "sigma2", "sim_phuber_wsid": "sid", "sim_l2": "sid",
                          "sim_l2_wsigma2": "sigma2"}
    settings = run_settings(runs)
    assert settings["weighting.sim_l2_wsigma2"] == "sigma2" and settings["huber_c.sim_phuber_c1e-01"] == 0.1
    assert "weighting.sid" not in settings and "huber_c.sim_l2" not in settings
    assert list(distill_runs(base, ["sid"], [0.1], ["sigma2"])) == ["sid"]


class Affine(torch.nn.Module):
    """A denoiser a·x + b (one parameter each), distinguishable by its constants."""

    def __init__(self, a: float, b: float):
        super().__init__()
        self.a, self.b = torch.nn.Parameter(torch.tensor(a)), torch.nn.Parameter(torch.tensor(b))

    def forward(self, x, sigma, class_labels=None):
        return self.a * x + self.b


def test_generator_step_passes_teacher_and_fake_in_order_and_trains_only_the_generator(monkeypatch):
    """notes A.3: the generator step evaluates the teacher as f_phi and the fake score as f_psi at the same live
    x_t, with both denoisers' parameters frozen: only G gets a gradient, the fake score none."""
    import fmrecipes.sim.distill as distill_mod
    from fmrecipes.sim.distill import Distillation, generator_step

    seen = {}

    def spy(cfg, x_g, f_phi, f_psi, sigma):
        seen.update(x_g=x_g, f_phi=f_phi, f_psi=f_psi, sigma=sigma)
        return (f_phi - f_psi).pow(2).sum(1) * x_g.sum(1)

    monkeypatch.setattr(distill_mod, "generator_loss", spy)
    torch.manual_seed(0)
    state, teacher = Distillation(Affine(0.5, -1.0)), Affine(2.0, 3.0).requires_grad_(False)
    cfg = DistillConfig(batch_size=8, loss=LossConfig("sim_phuber"))
    opt = torch.optim.Adam(state.generator.parameters(), lr=1e-3)
    before = [p.detach().clone() for p in state.generator.parameters()]
    generator_step(state, teacher, opt, lambda n: (torch.randn(n, 2), None), cfg, EDM, torch.device("cpu"), DistEnv())
    x_g, sigma = seen["x_g"], seen["sigma"].reshape(-1, 1)
    x_t_from_phi = (seen["f_phi"] - 3.0) / 2.0  # the teacher is 2 x_t + 3
    torch.testing.assert_close(seen["f_psi"], 0.5 * x_t_from_phi - 1.0)  # the fake (a copy of init) at that x_t
    assert torch.all((x_t_from_phi - x_g).abs() > 0) and torch.all(sigma > 0)  # x_t = x_g + sigma eps, not x_g
    assert seen["f_phi"].requires_grad and seen["f_psi"].requires_grad  # x_t carries the gradient into both
    assert all(p.grad is None for p in state.fake.parameters())  # no generator gradient reaches the fake score
    assert all(p.grad is None for p in teacher.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, state.generator.parameters()))  # G took the step
    assert all(p.requires_grad for p in state.fake.parameters())  # and the fake score trains again next step


@pytest.fixture(scope="module")
def smoke_run(smoke_all):
    """The shared smoke reproduction's replicate (seed 0)."""
    return smoke_all / "sim" / "seed0"


def test_reproduce_smoke_writes_summary_and_plots(smoke_run):
    summary = json.loads((smoke_run.parent / "summary.json").read_text())
    for m in ("sim_phuber", "sim_l2", "sid", "diff_instruct"):
        for key in ("fd", "precision", "recall", "modes", "classes", "fd_mid", "fd_tail"):
            assert math.isfinite(summary[f"{key}.{m}"]), key
    for nfe in (1, 3, 35):
        assert f"fd.teacher.nfe{nfe}" in summary
    assert "modes.sim_phuber_c1e-01" in summary
    # the 2x2 of distance x weighting and the c sweep ran on the images, each number labelled with its settings
    for run, weighting in (("sim_phuber", "sigma2"), ("sim_phuber_wsid", "sid"), ("sim_l2", "sid"),
                           ("sim_l2_wsigma2", "sigma2")):
        assert math.isfinite(summary[f"fd_tail.{run}"]) and summary[f"weighting.{run}"] == weighting
    assert summary["huber_c.sim_phuber_c1e-01"] == 0.1 and summary["huber_c.sim_phuber"] == 1e-3
    assert "huber_c.sim_l2" not in summary and "weighting.sid" not in summary
    for nfe in (3, 35):  # the budget at which one step matches the teacher: a count, or censored
        value = summary[f"images_to_teacher_fd_nfe{nfe}.sim_phuber"]
        assert isinstance(value, (int, float)) or str(value).startswith(">")
    value = summary["images_to_1.2x_teacher_fd_nfe35_extrapolated.sim_phuber"]  # what the curve points to
    assert isinstance(value, int) or value in ("not decreasing", "not evaluated", "beyond 100x this run")
    # every run's per-level gradient probe, and the L2 run matched to SIM-PH's profile beside the 2x2
    assert summary["weighting.sim_l2_wmatched"] == "table" and math.isfinite(summary["fd_tail.sim_l2_wmatched"])
    probes = json.loads((smoke_run / "images" / "grad_profile.json").read_text())
    assert set(probes) >= {"sim_phuber", "sim_l2", "sid", "diff_instruct", "sim_l2_wmatched"}
    for run, probe in probes.items():
        assert summary[f"grad_share_above_sigma1.{run}"] == probe["share_above_sigma1"]
        assert len(probe["sigma"]) == len(probe["grad_norm"]) == len(probe["share"]) == 5
    assert summary["grad_share_above_sigma1.sim_l2_wmatched"] == pytest.approx(
        summary["grad_share_above_sigma1.sim_phuber"], rel=1e-6)
    assert summary["distill_ema_halflife_images"] > 0
    # the size sweep: the main run is the 1x row, the 2x row a teacher of twice the width and SIM-PH from it
    assert summary["fd_sim_phuber.size_x1"] == summary["fd.sim_phuber"]
    assert summary["fd_teacher_nfe35.size_x1"] == summary["fd.teacher.nfe35"]
    assert summary["params.size_x2"] > 2 * summary["params.size_x1"]
    seed0 = json.loads((smoke_run / "summary.json").read_text())
    last = json.loads((smoke_run / "images" / "size_x2" / "sim_phuber" / "metrics.jsonl").read_text().splitlines()[-1])
    assert seed0["fd_sim_phuber.size_x2"] == last["fd"] and last["step"] == 4
    for size in ("size_x1", "size_x2"):
        assert seed0[f"gap_log_ratio.{size}"] == pytest.approx(
            math.log(seed0[f"fd_sim_phuber.{size}"] / seed0[f"fd_teacher_nfe35.{size}"]))
    # the pixel AR baseline: its FD on the same features, its size and compute beside the generator's and teacher's
    for key in ("fd.pixel_ar", "fd.real_test_quantised", "samples_per_s.pixel_ar",
                "samples_per_s.one_step_beside_pixel_ar"):
        assert math.isfinite(summary[key]) and summary[key] > 0, key
    assert summary["params.pixel_ar"] > 0 and summary["train_steps.pixel_ar"] == 3
    # the speed-up is the ratio of the two timed sampling rates, measured in the same run
    assert summary["speedup.one_step_vs_teacher"] == pytest.approx(
        summary["samples_per_s.one_step"] / summary["samples_per_s.teacher_nfe35"], rel=1e-9)
    # the paper's numbers beside ours are the ones the claims quote (notes A.5)
    from fmrecipes.sim.paper import CLAIMS

    quoted = {c.id: c.paper for c in CLAIMS}
    assert f"{summary['paper.cifar10_fid.sim_phuber']:g} vs {summary['paper.cifar10_fid.teacher.nfe35']:g}" in \
        quoted["one_step_vs_teacher"]
    assert f"vs {summary['paper.cifar10_fid.diff_instruct']:g}" in quoted["sim_vs_diff_instruct"]
    for png in ("toy_samples.png", "toy_convergence.png", "image_samples.png", "image_convergence.png",
                "image_grad_profile.png"):
        assert (smoke_run / png).stat().st_size > 1000


def test_sample_cli_and_conditional_run(smoke_run, tmp_path):
    png = tmp_path / "grid.png"
    r = run_cli("sim", "sample", str(smoke_run), "--method", "sid", "--n", "16", "--png", str(png))
    assert r.returncode == 0, r.stderr[-2000:]
    assert png.stat().st_size > 1000
    out = tmp_path / "cond"
    r = run_cli("sim", "run", "--config", str(SMOKE), "--out", str(out), "run_toy=false", "images.conditional=true",
                "methods=[sim_phuber]", "seeds=[3]", "images.pixel_ar.enabled=false")
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert "label_acc.sim_phuber" in summary and summary["seeds"] == [3]
    assert summary == {**summary, **json.loads((out / "seed3" / "summary.json").read_text())}  # one replicate
    assert summary["claims.sim_vs_diff_instruct.n_seeds"] == 0  # diff_instruct did not run
    assert '"claims.one_step_vs_teacher.verdict": "inconclusive"' in r.stdout


@pytest.mark.parametrize("args,message", [
    (["sim", "run", "--config", str(SMOKE), "methods=[sim_huber]"], "methods=['sim_huber'] must be"),
    (["sim", "run", "--config", str(SMOKE), "images.conditional=true"],
     "images.pixel_ar.enabled=true compares unconditional models"),
    (["sim", "run", "--config", str(SMOKE), "images.distill.ema_halflife_fraction=2"],
     "images.distill.ema_halflife_fraction=2.0 must be in (0, 1]"),
    (["sim", "run", "--config", str(SMOKE), "images.distill.lr_schedule=linear"],
     "images.distill.lr_schedule='linear' is not valid"),
    (["sim", "run", "--config", str(SMOKE), "images.dataset=cifar"],
     "images.dataset='cifar' is neither a built-in dataset"),
    (["sim", "run", "--config", str(SMOKE), "toy.net.kind=cnn"], "toy.net.kind='cnn' is unknown"),
    (["sim", "run", "--config", str(SMOKE), "images.resolution=2"], "images.resolution=2 must be at least 4"),
    (["sim", "run", "--config", str(SMOKE), "toy.distill.loss.huber_c=0"], "toy.distill.loss.huber_c=0.0 must"),
    (["sim", "sample", "/nonexistent/run"], "is not a sim replicate directory"),
    (["sim", "run", "--config", str(SMOKE), "images.size_sweep=[1]"], "images.size_sweep=[1.0] must list distinct"),
    (["sim", "run", "--config", str(SMOKE), "images.size_sweep=[0.25]", "images.net.kind=unet",
      "images.net.channels=[16]"], "images.size_sweep: width multiplier 0.25 gives unet channels [0]"),
    (["sim", "run", "--config", str(SMOKE), "images.size_sweep=[2]", "methods=[sid]"],
     "images.size_sweep distils SIM-PH at each size"),
    (["sim", "run", "--config", str(SMOKE), "images.teacher_path=/your/ddpm"],
     "images.size_sweep trains a teacher per size here: it cannot scale images.teacher_path"),
    (["sim", "run", "--config", str(SMOKE), "seeds=[1,1]"], "seeds=[1, 1] must be a non-empty list of distinct"),
])
def test_bad_input_gives_one_line_errors(args, message):
    r = run_cli(*args)
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr


def test_two_processes_distil_as_one_does(tmp_path):
    """``torchrun --nproc_per_node 2 ... sim run`` equals one process (issue 20): the teacher and the FD classifier
    train with the shared DDP loop; each distillation step draws its batch whole on every process, trains on its
    share and averages the gradients."""
    import subprocess
    import sys
    from pathlib import Path

    from safetensors.torch import load_file

    overrides = ["run_toy=false", "methods=[sim_phuber]", "images.huber_c_ablation=[]",
                 "images.weighting_ablation=[]"]
    one = run_cli("sim", "run", "--config", str(SMOKE), "--out", str(tmp_path / "one"), *overrides)
    assert one.returncode == 0, one.stderr
    torchrun = Path(sys.executable).with_name("torchrun")
    two = subprocess.run([str(torchrun), "--nproc_per_node", "2", "-m", "fmrecipes", "sim", "run", "--config",
                          str(SMOKE), "--out", str(tmp_path / "two"), *overrides], capture_output=True, text=True,
                         cwd=ROOT, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    runs = [tmp_path / run / "seed0" / "images" for run in ("one", "two")]
    rows = [[json.loads(line) for line in (r / "sim_phuber" / "metrics.jsonl").read_text().splitlines()] for r in runs]
    assert len(rows[0]) == len(rows[1]) == 3  # step 0 and every eval_every = 2 of 4 steps
    for a, b in zip(*rows):
        for key in ("loss_fake", "fd"):
            if key in a:
                assert a[key] == pytest.approx(b[key], rel=1e-4), (key, a["step"])
        if "loss_generator" in a:  # a surrogate whose value is a small difference of near-equal denoiser outputs:
            # float-order differences (2e-5 in the weights) move it by ~0.3%; its gradient is what must agree
            assert a["loss_generator"] == pytest.approx(b["loss_generator"], rel=1e-2), a["step"]
    w = [load_file(str(next((r / "sim_phuber" / "checkpoints").iterdir()) / "model.safetensors")) for r in runs]
    assert max((w[0][k] - w[1][k]).abs().max().item() for k in w[0]) < 1e-4
