"""Configuration of a TIPS run and of the ablation experiment (arXiv 2410.16512)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..core.dist import RunConfig
from ..core.text_encoder import TextConfig
from ..core.train import TrainConfig
from ..core.vit import ViTConfig
from ..data.scene_config import SceneConfig
from ..errors import ConfigError

# The paper's ablation ladder (Table 1, notes A.7): which text feeds which [CLS], which image losses.
VARIANTS: dict[str, dict[str, bool]] = {
    "clip_alt": {"dual_cls": False, "distill": False, "mim": False},              # row A
    "clip_alt_distill": {"dual_cls": False, "distill": True, "mim": False},       # row C1
    "clip_alt_distill_mim": {"dual_cls": False, "distill": True, "mim": True},    # row C2
    "dual_cls": {"dual_cls": True, "distill": False, "mim": False},               # row B
    "tips": {"dual_cls": True, "distill": True, "mim": True},                     # full TIPS
}


@dataclass
class SSLConfig:
    """Self-distillation and masked image modelling. TIPS states the loss weights (1 and 2) and the 75%
    random masking; the rest are DINOv2 defaults, scaled down where noted (notes A.3)."""

    distill_weight: float = 1.0   # α
    mim_weight: float = 2.0       # β
    # DINOv2's KoLeo regulariser on the student's [CLS] (DINOv2: 0.1). TIPS states its loss as CLIP + α·DINO +
    # β·iBOT and does not mention KoLeo, so it is off; 0.1 adds DINOv2's
    koleo_weight: float = 0.0
    mask_ratio: float = 0.75
    n_local: int = 4              # DINOv2: 8 local crops
    local_size: int = 32          # DINOv2: 98 px at 224 (0.44 of the side); here half the canvas
    local_scale: tuple[float, float] = (0.05, 0.32)
    prototypes: int = 1024        # DINOv2: 65536; TIPS: 8k-32k
    head_hidden: int = 256        # DINOv2: 2048
    head_bottleneck: int = 64     # DINOv2: 256
    separate_ibot_head: bool = False  # DINOv2 default: iBOT shares the DINO head
    student_temp: float = 0.1
    teacher_temp: float = 0.07
    warmup_teacher_temp: float = 0.04
    teacher_temp_warmup: float = 0.3  # fraction of the steps
    center_momentum: float = 0.9
    # The EMA teacher's momentum starts at m0 and follows DINO's cosine to 1. DINOv2's m0 = 0.994 is a half-life of
    # 115 steps, a small fraction of its 10^5+ steps; over our few hundred it would leave the teacher mostly its
    # random initialisation (70% after quick's 120 steps). So m0 is set from the run's length: the half-life at
    # step 0 is `teacher_halflife` x train.steps (0.05: 0.1% of the initial weights left at the end); an explicit
    # `momentum_start` (e.g. 0.994, DINOv2's) overrides it.
    teacher_halflife: float = 0.05
    momentum_start: float | None = None
    distill_cls: Literal[1, 2] = 1    # which [CLS] feeds L_distill: not stated by TIPS (notes A.3)

    def start_momentum(self, steps: int) -> float:
        """m0: ``momentum_start`` if given, else 0.5 ** (1 / (teacher_halflife x steps)) (see above)."""
        if self.momentum_start is not None:
            return self.momentum_start
        return 0.5 ** (1.0 / max(self.teacher_halflife * steps, 1e-8))


@dataclass
class ProbeConfig:
    """Frozen-feature evaluation budgets (fixed for every variant)."""

    n_train: int = 1000       # train scenes for the dense probes
    n_test: int = 500         # test scenes for retrieval and the dense probes
    n_zeroshot: int = 2000    # Fashion-MNIST test images (the test-scene half) for zero-shot
    steps: int = 300
    batch_size: int = 64
    lr: float = 1e-2
    seed: int = 0
    zeroshot_cls: Literal[1, 2] = 1   # TIPS' inference uses CLS1 for zero-shot (notes A.2)
    retrieval_cls: Literal[1, 2] = 1  # notes A.9: "COCO/Flickr R@1 via CLS1"; CLS2 is also reported
    random_baseline: bool = True      # also probe an untrained tower (`<metric>.random_init`): the floor
    # what the dense probes read: the patch tokens of the last `layers` blocks (each after the final norm,
    # concatenated), batch-normalised if `batch_norm`; DINOv2's linear probe: 4 and true; the plain one: 1, false
    layers: int = 1
    batch_norm: bool = False
    # also train the same ViT supervised on the training scenes' masks and depth, with the variants' budget, and
    # probe it alike (`<metric>.supervised`): the dense probes' ceiling at this size
    supervised_ceiling: bool = False
    # also probe the self-supervised variants' EMA teacher tower (`<metric>_teacher.<variant>`), a diagnostic beside the
    # DINO collapse numbers; the claims read the student
    teacher: bool = True


@dataclass
class TIPSConfig:
    out: str = "runs/tips"
    variant: str = "tips"
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))  # the experiment's ladder
    data: SceneConfig = field(default_factory=SceneConfig)
    n_train: int = 4000
    # your own image-text set instead of FashionScenes for training (every row; n_train is then unused): an index
    # (.jsonl/.parquet: image, alt_text(s), caption), a directory of images with sidecar texts, or a saved
    # `datasets` dataset with an image column. The probes still measure on FashionScenes.
    train_data: str | None = None
    global_scale: tuple[float, float] = (0.7, 1.0)  # our choice: the CLIP image is this crop; captions name objects
    tokenizer_vocab: int = 1024
    vit: ViTConfig = field(default_factory=ViTConfig)
    text: TextConfig = field(default_factory=TextConfig)
    init_temperature: float = 0.07
    max_logit_scale: float = 100.0
    ssl: SSLConfig = field(default_factory=SSLConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    seed: int = 0
    seeds: list[int] = field(default_factory=lambda: [0])  # `run` / reproduce: one full replicate per seed
    run: RunConfig = field(default_factory=RunConfig)

    def validate(self) -> None:
        for name in [self.variant, *self.variants]:
            if name not in VARIANTS:
                raise ConfigError(f"variant {name!r} is unknown; choose from {', '.join(VARIANTS)}")
        if self.text.kind == "scratch" and self.text.width != self.vit.width:
            raise ConfigError(f"text.width={self.text.width} must equal vit.width={self.vit.width} (TIPS: one "
                              "width, no projection heads)")
        if self.text.kind == "scratch" and self.text.vocab_size < self.tokenizer_vocab:
            raise ConfigError(f"text.vocab_size={self.text.vocab_size} must be at least tokenizer_vocab="
                              f"{self.tokenizer_vocab}")
        if self.data.size != self.vit.image_size:
            raise ConfigError(f"data.size={self.data.size} must equal vit.image_size={self.vit.image_size}")
        if not 1 <= self.probe.layers <= self.vit.depth:
            raise ConfigError(f"probe.layers={self.probe.layers} must be between 1 and vit.depth={self.vit.depth}")
        if self.ssl.local_size % self.vit.patch_size:
            raise ConfigError(f"ssl.local_size={self.ssl.local_size} must be a multiple of vit.patch_size")
        if not 0 < self.ssl.mask_ratio < 1:
            raise ConfigError(f"ssl.mask_ratio={self.ssl.mask_ratio} must be in (0, 1)")
        distills = any(VARIANTS[v]["distill"] for v in [self.variant, *self.variants])
        if self.ssl.n_local < (1 if distills else 0):
            raise ConfigError(f"ssl.n_local={self.ssl.n_local} must be at least 1: self-distillation compares the "
                              "teacher's global crop with the student's local crops")
        for name in ("distill_weight", "mim_weight", "koleo_weight"):
            if getattr(self.ssl, name) < 0:
                raise ConfigError(f"ssl.{name}={getattr(self.ssl, name)} must be >= 0")
        if self.ssl.teacher_halflife <= 0:
            raise ConfigError(f"ssl.teacher_halflife={self.ssl.teacher_halflife} must be positive (a fraction of "
                              "train.steps)")
        if self.ssl.momentum_start is not None and not 0 <= self.ssl.momentum_start <= 1:
            raise ConfigError(f"ssl.momentum_start={self.ssl.momentum_start} must be in [0, 1] (or null)")

    def flags(self, variant: str | None = None) -> dict[str, bool]:
        return VARIANTS[variant or self.variant]
