"""Configuration of SIM distillation runs and of the ``reproduce sim`` experiment (arXiv 2410.16794)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from ..core.dist import RunConfig
from ..core.train import TrainConfig
from ..errors import ConfigError
from .edm import EDMConfig
from .losses import METHODS, LossConfig
from .nets import NetConfig, scaled

TEACHER_FD_TARGET = 1.2  # one step "matches" the teacher when its FD is within this ratio of the teacher's


@dataclass
class DistillConfig:
    """The alternating fake-score / generator loop (notes A.3; SiD's CIFAR-10 settings in comments)."""

    steps: int = 400
    batch_size: int = 64              # SiD: 256
    lr_generator: float = 1e-5        # SiD: 1e-5 for both
    lr_fake: float = 1e-5
    beta1_generator: float = 0.0      # SiD: g_beta1 0
    beta1_fake: float = 0.0           # SiD: betas (0, 0.999)
    beta2: float = 0.999
    sigma_init: float = 2.5           # x_g = D(sigma_init z; sigma_init), SIM's --init_sigma 2.5
    ema_halflife_images: int = 20_000  # SiD: 0.5 Mimg
    ema_rampup: float | None = 0.05    # halflife <= images seen x rampup (SiD, EDM); null: no ramp
    # the half-life as a share of the run's generator images (steps x batch_size), in place of
    # ema_halflife_images: an EMA scaled to the run (SiD's 0.5 Mimg is 0.5% of its 100 Mimg; EDM's ramp, set for
    # 200 Mimg, caps a short run's half-life at a few steps)
    ema_halflife_fraction: float | None = None
    # both optimisers' learning rate over the run: "constant" (SiD) or "cosine", from lr down to lr x min_lr_ratio
    # at the last step (a rate decayed to the end of a short run)
    lr_schedule: Literal["constant", "cosine"] = "constant"
    min_lr_ratio: float = 0.0
    eval_every: int = 50
    ckpt_every: int = 100
    seed: int = 0
    loss: LossConfig = field(default_factory=LossConfig)

    def validate(self, prefix: str = "distill") -> None:
        for name in ("steps", "batch_size", "eval_every", "ckpt_every"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{prefix}.{name}={getattr(self, name)} must be positive")
        for name in ("lr_generator", "lr_fake", "sigma_init"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{prefix}.{name}={getattr(self, name)} must be positive")
        if self.ema_rampup is not None and self.ema_rampup <= 0:
            raise ConfigError(f"{prefix}.ema_rampup={self.ema_rampup} must be positive (null: no ramp)")
        if self.ema_halflife_fraction is not None and not 0 < self.ema_halflife_fraction <= 1:
            raise ConfigError(f"{prefix}.ema_halflife_fraction={self.ema_halflife_fraction} must be in (0, 1]")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError(f"{prefix}.min_lr_ratio={self.min_lr_ratio} must be in [0, 1]")
        self.loss.validate(f"{prefix}.loss")


def distill_runs(base: DistillConfig, methods: list[str], huber_cs: list[float],
                 weightings: list[str]) -> dict[str, DistillConfig]:
    """Run name -> distillation config: each method; SIM-PH at each ablated pseudo-Huber c
    (``sim_phuber_c<c>``); and SIM-PH and SIM-L2 under each listed weighting other than their default
    (``<method>_w<weighting>``), so that the two distances are also compared with the weighting held fixed."""
    runs = {m: replace(base, loss=replace(base.loss, method=m)) for m in methods}
    if "sim_phuber" in methods:
        for c in huber_cs:
            runs[f"sim_phuber_c{c:.0e}"] = replace(base, loss=replace(base.loss, method="sim_phuber", huber_c=c))
    for m in ("sim_phuber", "sim_l2"):
        if m not in methods:
            continue
        for w in weightings:
            if w != runs[m].loss.resolved_weighting():
                runs[f"{m}_w{w}"] = replace(base, loss=replace(base.loss, method=m, weighting=w))
    return runs


def run_settings(runs: dict[str, DistillConfig]) -> dict[str, float | str]:
    """What each run's numbers were measured with: ``weighting.<run>`` and, for SIM-PH, ``huber_c.<run>``."""
    out: dict[str, float | str] = {}
    for name, dcfg in runs.items():
        if dcfg.loss.method.startswith("sim_"):
            out[f"weighting.{name}"] = dcfg.loss.resolved_weighting()
        if dcfg.loss.method == "sim_phuber":
            out[f"huber_c.{name}"] = dcfg.loss.huber_c
    return out


@dataclass
class GaussianProbe:
    """The exact-score Gaussian pair: data N(0, data_std^2 I), generator N(generator_shift, generator_std^2 I), in
    as many dimensions as the images have."""

    data_std: float = 0.5          # EDM's sigma_data, images in [-1, 1]
    generator_std: float = 0.7     # a generator whose spread and mean are off, as an early one-step generator
    generator_shift: float = 0.1
    batch: int = 256
    levels: int = 13               # noise levels, log-spaced over [sigma_min, sigma_max]


@dataclass
class PixelARConfig:
    """The pixel-level autoregressive baseline (sim.pixel_ar): the core GPT over quantised pixels, raster order."""

    enabled: bool = False
    levels: int = 16                  # grey levels per pixel (tokens; BOS is one more)
    n_layer: int = 4
    n_head: int = 4
    d_model: int | None = None        # null: the width whose parameter count is nearest the generator's
    batch_size: int = 64
    lr: float = 1e-3
    steps: int | None = None          # null: the teacher's training compute (FLOPs), see compute_matched_steps
    temperature: float = 1.0          # sampling: the model's own distribution

    def validate(self, prefix: str = "images.pixel_ar") -> None:
        if self.levels < 2:
            raise ConfigError(f"{prefix}.levels={self.levels} must be at least 2")
        for name in ("n_layer", "n_head", "batch_size", "lr", "d_model", "steps"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{prefix}.{name}={value} must be positive")
        if self.temperature < 0:
            raise ConfigError(f"{prefix}.temperature={self.temperature} must be >= 0")

    def train_config(self, steps: int) -> TrainConfig:
        """The shared training loop's settings for ``steps`` steps (cosine decay, 5% warm-up, no weight decay)."""
        return TrainConfig(steps=steps, batch_size=self.batch_size, micro_batch_size=self.batch_size, lr=self.lr,
                           warmup_steps=max(1, steps // 20), weight_decay=0.0, grad_clip=1.0, beta2=0.99,
                           log_every=max(1, steps // 10), ckpt_every=max(1, steps // 4))


@dataclass
class ToyConfig:
    """The 2-D mixture task: the exact teacher, and the MLP denoiser that initialises G and the fake score."""

    name: str = "ring8"               # ring8 | grid25
    std: float = 0.05                 # per-component std (notes A.7.3: 0.05-0.1)
    n_data: int = 50_000              # mixture samples the initial MLP is fitted on (EDM loss)
    net: NetConfig = field(default_factory=NetConfig)
    init: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=1500, batch_size=256, micro_batch_size=256, lr=2e-3, warmup_steps=50, weight_decay=0.0,
        grad_clip=None, beta2=0.999, log_every=100, eval_every=500, ckpt_every=500))
    distill: DistillConfig = field(default_factory=lambda: DistillConfig(
        steps=600, batch_size=256, lr_generator=1e-3, lr_fake=1e-3, ema_halflife_images=10_000, eval_every=100))
    huber_c_ablation: list[float] = field(default_factory=lambda: [1e-2, 1e-1])  # extra SIM-PH runs
    weighting_ablation: list[str] = field(default_factory=list)  # see distill_runs
    n_eval: int = 2000


@dataclass
class ImageConfig:
    """The image task: an EDM teacher trained here, a feature classifier, and the distillation runs."""

    dataset: str = "digits"           # digits | mnist | fashion | a directory of your images (class subfolders
    #                                   optional; unlabelled sets get a rotation-prediction FD network)
    resolution: int | None = None     # resize to this square side (null: the dataset's own, 8 or 32)
    channels: int | None = None       # a directory's images as 1 (luma) or 3 (RGB, its default) channels
    conditional: bool = False         # class-conditional teacher and generator
    teacher_path: str | None = None   # a local diffusers UNet2DModel (epsilon DDPM) as the teacher: not trained here
    net: NetConfig = field(default_factory=lambda: NetConfig(kind="unet"))
    teacher: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=2000, batch_size=128, micro_batch_size=128, lr=1e-3, warmup_steps=100, weight_decay=0.0,
        grad_clip=1.0, beta2=0.999, log_every=100, eval_every=500, ckpt_every=500))
    classifier: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=600, batch_size=128, micro_batch_size=128, lr=2e-3, warmup_steps=30, weight_decay=0.01,
        log_every=100, eval_every=300, ckpt_every=300))
    distill: DistillConfig = field(default_factory=DistillConfig)
    # SIM-PH's c sweep and the 2x2 of distance (PH, L2) x weighting (sigma2, sid), see distill_runs
    huber_c_ablation: list[float] = field(default_factory=lambda: [1e-2, 1e-1])
    weighting_ablation: list[str] = field(default_factory=lambda: ["sigma2", "sid"])
    # the per-level gradient probe on an exact Gaussian (sim.profile), reported for every run; matched_profile
    # adds sim_l2_wmatched, SIM-L2 weighted to give SIM-PH's gradient per noise level on that probe
    profile: GaussianProbe = field(default_factory=GaussianProbe)
    matched_profile: bool = True
    # one SIM step against a pixel-level autoregressive model of about the generator's size and the teacher's
    # training compute (sim.pixel_ar)
    pixel_ar: PixelARConfig = field(default_factory=PixelARConfig)
    # the gap one step leaves to its teacher against the generator's size (the generator is the teacher's network):
    # per multiplier m, a teacher whose widths are m x net's (sim.nets.scaled) trained here, and SIM-PH distilled
    # from it with the same distill config; the main run is m = 1. [] skips it
    size_sweep: list[float] = field(default_factory=list)
    nfe: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 18, 35])
    n_eval: int = 1000                # generated samples per evaluation
    n_reference: int = 2000           # real (train) images for the reference statistics
    eval_batch: int = 250
    knn_k: int = 3


@dataclass
class SimConfig:
    out: str = "runs/sim"
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    edm: EDMConfig = field(default_factory=EDMConfig)
    toy: ToyConfig = field(default_factory=ToyConfig)
    images: ImageConfig = field(default_factory=ImageConfig)
    run_toy: bool = True
    run_images: bool = True
    seed: int = 0
    seeds: list[int] = field(default_factory=lambda: [0])  # `run` / reproduce: one full replicate per seed
    # fp32 by default: the EDM teacher, the 2-D fit and the classifier train in full precision
    run: RunConfig = field(default_factory=lambda: RunConfig(precision="fp32"))

    def validate(self) -> None:
        from .gmm import TOYS
        from .images import DATASETS

        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise ConfigError(f"methods={self.methods} must be a non-empty list drawn from {', '.join(METHODS)}")
        if self.toy.name not in TOYS:
            raise ConfigError(f"toy.name={self.toy.name!r} is unknown; choose one of {', '.join(TOYS)}")
        if self.images.dataset not in DATASETS and not Path(self.images.dataset).is_dir():
            raise ConfigError(f"images.dataset={self.images.dataset!r} is neither a built-in dataset "
                              f"({', '.join(DATASETS)}) nor a directory of images")
        if self.images.channels not in (None, 1, 3) or (self.images.channels == 3 and self.images.dataset in
                                                        DATASETS):
            raise ConfigError(f"images.channels={self.images.channels} must be null, 1 or 3 (3 for a directory of "
                              "colour images only: the built-in sets are grey)")
        if self.images.resolution is not None and self.images.resolution < 4:
            raise ConfigError(f"images.resolution={self.images.resolution} must be at least 4 (or null)")
        if not self.images.nfe or min(self.images.nfe) < 1:
            raise ConfigError(f"images.nfe={self.images.nfe} must list positive step counts")
        for part in ("toy", "images"):
            sub = getattr(self, part)
            if any(c <= 0 for c in sub.huber_c_ablation):
                raise ConfigError(f"{part}.huber_c_ablation={sub.huber_c_ablation} must be positive")
            bad = [w for w in sub.weighting_ablation if w not in ("sigma2", "sid")]
            if bad:
                raise ConfigError(f"{part}.weighting_ablation: unknown {', '.join(bad)}; choose sigma2 or sid")
        for name, value in (("toy.n_eval", self.toy.n_eval), ("images.n_eval", self.images.n_eval),
                            ("images.n_reference", self.images.n_reference), ("images.eval_batch",
                                                                              self.images.eval_batch)):
            if value <= self.images.knn_k:
                raise ConfigError(f"{name}={value} must exceed images.knn_k={self.images.knn_k}")
        self.toy.net.validate("toy.net")
        self.images.net.validate("images.net")
        self.toy.init.validate()
        self.images.teacher.validate()
        self.images.classifier.validate()
        self.toy.distill.validate("toy.distill")
        self.images.distill.validate("images.distill")
        probe = self.images.profile
        for name in ("data_std", "generator_std", "batch"):
            if getattr(probe, name) <= 0:
                raise ConfigError(f"images.profile.{name}={getattr(probe, name)} must be positive")
        if probe.levels < 2:
            raise ConfigError(f"images.profile.levels={probe.levels} must be at least 2")
        self.images.pixel_ar.validate()
        self._validate_size_sweep()
        if self.images.pixel_ar.enabled and self.images.conditional:
            raise ConfigError("images.pixel_ar.enabled=true compares unconditional models: set "
                              "images.conditional=false, or disable the pixel AR baseline")
        if self.images.pixel_ar.enabled and self.images.teacher_path and self.images.pixel_ar.steps is None:
            raise ConfigError("images.pixel_ar.steps=null matches the teacher's training compute, unknown for "
                              "images.teacher_path: set images.pixel_ar.steps")

    def _validate_size_sweep(self) -> None:
        sweep = self.images.size_sweep
        if not sweep:
            return
        if 1 in sweep or len(set(sweep)) < len(sweep):
            raise ConfigError(f"images.size_sweep={sweep} must list distinct width multipliers other than 1 (the "
                              "main run is 1)")
        if self.images.teacher_path:
            raise ConfigError("images.size_sweep trains a teacher per size here: it cannot scale "
                              "images.teacher_path; set images.size_sweep=[]")
        if "sim_phuber" not in self.methods:
            raise ConfigError("images.size_sweep distils SIM-PH at each size: add sim_phuber to methods")
        for m in sweep:
            scaled(self.images.net, m, "images.size_sweep:")
