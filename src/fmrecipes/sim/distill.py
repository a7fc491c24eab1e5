"""One-step distillation: alternate one fake-score step and one generator step (SIM notes A.3).

The generator and the fake score both start as copies of the teacher denoiser; the generator is that denoiser
at one noise level, x_g = G(sigma_init z; sigma_init). The fake score f_psi learns the generator's noised
distribution by EDM denoising score matching on generator samples only (data-free). The generator then takes
one Adam step on the configured loss with both denoisers' parameters frozen and x_t = x_g + sigma eps live.
An EMA of the generator is what is evaluated. A killed run resumes from its last checkpoint and replays the
same steps (:class:`~fmrecipes.core.loop.StepLoop`, the core training loop's scaffold, reseeds the global RNG
from (seed, step) and keeps the log, the bar, the NaN/Inf stop, the cadences and preemption). Under torchrun
every process draws each step's batch whole and trains on its share, averaging gradients: N processes follow
the one-process run.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn as nn

from ..core import dist
from ..core.checkpoint import load_model, restore_latest, save_checkpoint
from ..core.loop import StepLoop
from ..core.metrics import read_jsonl
from ..core.train import cosine_factor
from ..errors import ConfigError
from .config import DistillConfig
from .edm import EDMConfig, edm_loss, sample_training_sigma
from .losses import generator_loss, sample_generator_sigma

SID_GRAD_CLAMP = 1e5  # SiD's nan_to_num: an infinite gradient entry becomes +-1e5, a NaN one 0
EXTRAPOLATION_BOUND = 100  # an extrapolated budget past this many times the run's images is reported as beyond it
LatentSampler = Callable[[int], tuple[torch.Tensor, torch.Tensor | None]]
Evaluator = Callable[[nn.Module], dict[str, float]]


def one_step(generator: nn.Module, z: torch.Tensor, sigma_init: float,
             class_labels: torch.Tensor | None = None) -> torch.Tensor:
    """The one-step sample x_g = G(sigma_init z; sigma_init) (SIM's inference: x = 2.5 z, then D(x; 2.5))."""
    return generator(sigma_init * z, sigma_init, class_labels)


class Distillation(nn.Module):
    """The three networks that a distillation checkpoint holds."""

    def __init__(self, init: nn.Module):
        super().__init__()
        self.generator = copy.deepcopy(init).requires_grad_(True)
        self.generator_ema = copy.deepcopy(init).requires_grad_(False)
        self.fake = copy.deepcopy(init).requires_grad_(True)


def ema_halflife(cfg: DistillConfig) -> float:
    """The EMA's half-life in generator images: ``ema_halflife_fraction`` of the run's images when set (scaled to
    the run), else ``ema_halflife_images``."""
    if cfg.ema_halflife_fraction is not None:
        return cfg.ema_halflife_fraction * cfg.steps * cfg.batch_size
    return float(cfg.ema_halflife_images)


def ema_beta(cfg: DistillConfig, images_seen: int) -> float:
    """Per-step EMA decay from a half-life in images, ramped up early when ``ema_rampup`` is set (EDM/SiD: the
    half-life is at most ``ema_rampup`` x the images seen)."""
    halflife = ema_halflife(cfg)
    if cfg.ema_rampup is not None:
        halflife = min(halflife, images_seen * cfg.ema_rampup)
    return 0.5 ** (cfg.batch_size / max(halflife, 1e-8))


def lr_factor(cfg: DistillConfig, step: int) -> float:
    """Both optimisers' learning-rate multiplier for ``step`` (1-based): 1 throughout (``constant``, SiD), or a
    cosine from 1 at the first step to ``min_lr_ratio`` at the last (``cosine``)."""
    if cfg.lr_schedule == "constant":
        return 1.0
    return cosine_factor(step - 1, cfg.steps - 1, 0, cfg.min_lr_ratio)


def _finite_rows(x: torch.Tensor) -> torch.Tensor:
    return torch.isfinite(x.flatten(1)).all(1)


def _share(n: int, env: dist.DistEnv) -> slice:
    """This process's rows of a batch of ``n`` drawn whole on every process (the same stream everywhere)."""
    per = n // env.world_size
    return slice(env.rank * per, (env.rank + 1) * per)


def _adam_step(loss: torch.Tensor, module: nn.Module, opt: torch.optim.Optimizer, env: dist.DistEnv) -> float:
    """Backward, non-finite gradients replaced as SiD's training loop does (``nan_to_num``: NaN to 0, +-Inf to
    +-1e5), gradients averaged over processes (each holds an equal share of the batch, so the average is the whole
    batch's), one optimizer step; the loss, averaged."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    for p in module.parameters():
        if p.grad is not None:
            torch.nan_to_num_(p.grad, nan=0.0, posinf=SID_GRAD_CLAMP, neginf=-SID_GRAD_CLAMP)
            if env.distributed:
                p.grad.copy_(dist.all_reduce_mean(p.grad, env))
    opt.step()
    return dist.all_reduce_mean(loss.detach(), env).item()


def fake_score_step(state: Distillation, opt: torch.optim.Optimizer, sample: LatentSampler, cfg: DistillConfig,
                    edm: EDMConfig, env: dist.DistEnv) -> float:
    """Step 1 (notes A.3): x_g without gradient into G, then one Adam step of EDM DSM on f_psi. The batch's latents,
    sigmas and noise are drawn whole; each process takes its share."""
    z, labels = sample(cfg.batch_size)
    part = _share(cfg.batch_size, env)
    z, labels = z[part], None if labels is None else labels[part]
    with torch.no_grad():
        x_g = one_step(state.generator, z, cfg.sigma_init, labels)
    sigma = sample_training_sigma(cfg.batch_size, edm, x_g.device)[part]
    noise = torch.randn(cfg.batch_size, *x_g.shape[1:], device=x_g.device, dtype=x_g.dtype)[part]
    keep = _finite_rows(x_g)  # SiD drops samples with NaN
    loss = edm_loss(state.fake, x_g[keep], edm, None if labels is None else labels[keep], sigma[keep], noise[keep])
    return _adam_step(loss, state.fake, opt, env)


def generator_step(state: Distillation, teacher: nn.Module, opt: torch.optim.Optimizer, sample: LatentSampler,
                   cfg: DistillConfig, edm: EDMConfig, device: torch.device, env: dist.DistEnv) -> float:
    """Step 2 (notes A.3): fresh z, x_t = x_g + sigma eps, both denoisers frozen, one Adam step on G (the batch
    drawn whole, each process on its share)."""
    z, labels = sample(cfg.batch_size)
    part = _share(cfg.batch_size, env)
    z, labels = z[part], None if labels is None else labels[part]
    x_g = one_step(state.generator, z, cfg.sigma_init, labels)
    sigma = sample_generator_sigma(cfg.batch_size, cfg.loss, edm, device)[part]
    eps = torch.randn(cfg.batch_size, *x_g.shape[1:], device=device, dtype=x_g.dtype)[part]
    finite = _finite_rows(x_g)  # SiD drops non-finite samples before the losses see them
    x_g, sigma, eps = x_g[finite], sigma[finite], eps[finite]
    labels = None if labels is None else labels[finite]
    x_t = x_g + sigma.reshape(-1, *([1] * (x_g.dim() - 1))) * eps
    state.fake.requires_grad_(False)
    try:
        if cfg.loss.method == "diff_instruct":  # its surrogate needs no gradient through the denoisers
            with torch.no_grad():
                f_phi, f_psi = teacher(x_t, sigma, labels), state.fake(x_t, sigma, labels)
        else:
            f_phi, f_psi = teacher(x_t, sigma, labels), state.fake(x_t, sigma, labels)
    finally:
        state.fake.requires_grad_(True)
    # rows where a denoiser gave NaN/Inf are left out before the loss: masking the loss afterwards would still
    # send 0 * NaN = NaN into every weight's gradient
    keep = _finite_rows(f_phi) & _finite_rows(f_psi)
    if not keep.any():
        return float("nan")
    per_sample = generator_loss(cfg.loss, x_g[keep], f_phi[keep], f_psi[keep], sigma[keep])
    return _adam_step(per_sample[torch.isfinite(per_sample)].mean(), state.generator, opt, env)


def distill(init: nn.Module, teacher: nn.Module, sample: LatentSampler, cfg: DistillConfig, edm: EDMConfig,
            run_dir: str | Path, env: dist.DistEnv, evaluate: Evaluator | None = None) -> nn.Module:
    """Run (or resume) a distillation in ``run_dir``; returns the EMA generator.

    ``sample(n)`` draws latents z and (for a conditional model) class labels on ``env.device`` from the global
    RNG. ``evaluate(G_ema)`` gives the quality metrics logged every ``eval_every`` steps (and at step 0) with
    ``images_seen``.
    """
    run_dir = Path(run_dir)
    device = env.device
    if cfg.batch_size % env.world_size:
        raise ConfigError(f"distill.batch_size={cfg.batch_size} must be a multiple of the {env.world_size} processes")
    teacher = teacher.to(device).eval().requires_grad_(False)
    state = Distillation(init).to(device)
    opt_g = torch.optim.Adam(state.generator.parameters(), lr=cfg.lr_generator,
                             betas=(cfg.beta1_generator, cfg.beta2), eps=1e-8)
    opt_f = torch.optim.Adam(state.fake.parameters(), lr=cfg.lr_fake, betas=(cfg.beta1_fake, cfg.beta2), eps=1e-8)
    start = 0
    sums, last = {"loss_fake": 0.0, "loss_generator": 0.0}, 0  # loss sums since the last logged step

    def restore(ckpt: Path, saved: dict) -> None:
        load_model(ckpt, into=state, device=device)
        opt_g.load_state_dict(saved["optimizer"])
        opt_f.load_state_dict(saved["opt_fake"])

    saved = restore_latest(run_dir, restore)
    if saved is not None:
        start, sums, last = int(saved["step"]), saved["loss_sums"], saved["last_logged"]
    evaluate = evaluate if env.is_main else None  # the main process measures and writes; the others train
    with StepLoop(run_dir, cfg.steps, start, saved is not None, cfg.seed, env) as loop:
        if start == 0 and evaluate is not None:
            loop.log({"step": 0, "images_seen": 0, **evaluate(state.generator_ema)})
        for step in loop:
            for opt, lr in ((opt_g, cfg.lr_generator), (opt_f, cfg.lr_fake)):  # a function of the step: resumes
                for group in opt.param_groups:
                    group["lr"] = lr * lr_factor(cfg, step)
            sums["loss_fake"] += fake_score_step(state, opt_f, sample, cfg, edm, env)
            loss_g = generator_step(state, teacher, opt_g, sample, cfg, edm, device, env)
            loop.check_finite(step, loss_g)
            sums["loss_generator"] += loss_g
            beta = ema_beta(cfg, step * cfg.batch_size)
            with torch.no_grad():
                for p_ema, p in zip(state.generator_ema.parameters(), state.generator.parameters()):
                    p_ema.lerp_(p, 1 - beta)
            if loop.due(step, cfg.eval_every):
                record = {"step": step, "images_seen": step * cfg.batch_size,
                          **{k: v / (step - last) for k, v in sums.items()}}
                sums, last = dict.fromkeys(sums, 0.0), step
                if evaluate is not None:
                    record.update(evaluate(state.generator_ema))
                loop.log(record, loss_g=f"{record['loss_generator']:.3g}")
            stop = loop.stop_requested(env)
            if (loop.due(step, cfg.ckpt_every) or stop) and env.is_main:
                save_checkpoint(run_dir, step, state, opt_g, {"opt_fake": opt_f.state_dict(), "loss_sums": sums,
                                                              "last_logged": last}, keep=1)
            if stop:
                dist.barrier(env)
                raise loop.preempted(step)
    dist.barrier(env)  # the main process's last evaluation is written before any process reads the curve
    return state.generator_ema


def curve(run_dir: str | Path) -> list[dict]:
    """The logged evaluation records of a distillation run, in step order."""
    return read_jsonl(Path(run_dir) / "metrics.jsonl")


def final_metrics(run_dir: str | Path) -> dict[str, float]:
    """The quality metrics of the finished EMA generator: the run's last logged evaluation (step == steps)."""
    return {k: v for k, v in curve(run_dir)[-1].items()
            if k not in ("step", "images_seen", "loss_fake", "loss_generator")}


def images_to_reach(records: list[dict], key: str, target: float) -> int | str:
    """Generator images seen at the first evaluation whose ``key`` is at most ``target`` (the budget one step
    needs to match a teacher's FD); censored, ``"> <images of the last evaluation>"``, when none reached it."""
    for r in records:
        if key in r and r[key] <= target:
            return int(r["images_seen"])
    return f"> {records[-1]['images_seen']}" if records else "not evaluated"


def extrapolated_images(records: list[dict], key: str, target: float) -> int | str:
    """Generator images at which the power law ``key = a * images^b``, fitted by least squares in log-log space to
    the evaluations of the run's second half, reaches ``target``: the budget the measured curve points to when the
    run ended above it (issue 18's "what budget it needs, from the curve"). An extrapolation: a curve that
    flattens later needs more. ``"not decreasing"`` when the fitted slope is not negative, and ``"beyond 100x this
    run"`` past :data:`EXTRAPOLATION_BOUND` times the run's images (a power law fitted on one run says nothing
    that far out)."""
    last = records[-1]["images_seen"] if records else 0
    pts = [(math.log(r["images_seen"]), math.log(r[key])) for r in records
           if r["images_seen"] > last / 2 and key in r and math.isfinite(r[key]) and r[key] > 0]
    if len(pts) < 2:
        return "not evaluated"
    mx, my = sum(x for x, _ in pts) / len(pts), sum(y for _, y in pts) / len(pts)
    slope = sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)
    if slope >= 0:
        return "not decreasing"
    images = math.exp(min(mx + (math.log(target) - my) / slope, 700.0))
    if images > EXTRAPOLATION_BOUND * last:
        return f"beyond {EXTRAPOLATION_BOUND}x this run"
    return int(round(images))

