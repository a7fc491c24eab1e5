"""The TIPS model: a (dual-[CLS]) ViT and a text tower, with the DINO / iBOT heads and the EMA teacher
(notes A.3); its loss is :func:`fmrecipes.tips.losses.tips_loss`.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import torch
import torch.nn as nn

from ..core.contrastive import LogitScale
from ..core.text_encoder import FrozenMiniLM, TextEncoder
from ..core.train import StepHooks
from ..core.vit import ViT, ViTConfig
from .config import TIPSConfig
from .ssl import PrototypeHead, ema_update, teacher_momentum, warmup


def vit_config(cfg: TIPSConfig, variant: str) -> ViTConfig:
    """The variant's image tower: two [CLS] tokens for dual-CLS variants, a mask token with MIM."""
    flags = cfg.flags(variant)
    return replace(cfg.vit, n_cls=2 if flags["dual_cls"] else 1, mask_token=flags["mim"])


def text_tower(cfg: TIPSConfig) -> nn.Module:
    return FrozenMiniLM(cfg.vit.width) if cfg.text.kind == "minilm" else TextEncoder(cfg.text)


class TIPSModel(nn.Module):
    def __init__(self, cfg: TIPSConfig, variant: str):
        super().__init__()
        self.cfg, self.variant, self.flags = cfg, variant, cfg.flags(variant)
        self.vit = ViT(vit_config(cfg, variant))
        self.text = text_tower(cfg)
        self.scale = LogitScale(cfg.init_temperature, cfg.max_logit_scale)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        s = cfg.ssl
        if self.flags["distill"] or self.flags["mim"]:
            self.head = PrototypeHead(cfg.vit.width, s.head_hidden, s.head_bottleneck, s.prototypes)
            self.ibot_head = (PrototypeHead(cfg.vit.width, s.head_hidden, s.head_bottleneck, s.prototypes)
                              if self.flags["mim"] and s.separate_ibot_head else self.head)
            teacher = nn.ModuleDict({"vit": self.vit, "head": self.head, "ibot_head": self.ibot_head})
            self.teacher = copy.deepcopy(teacher).requires_grad_(False)
            self.register_buffer("center_cls", torch.zeros(s.prototypes))
            self.register_buffer("center_patch", torch.zeros(s.prototypes))

    def student(self) -> nn.ModuleDict:
        """The modules the teacher tracks (same structure as ``self.teacher``)."""
        return nn.ModuleDict({"vit": self.vit, "head": self.head, "ibot_head": self.ibot_head})

    def teacher_temp(self) -> float:
        s = self.cfg.ssl
        return warmup(s.warmup_teacher_temp, s.teacher_temp, int(self.step), int(s.teacher_temp_warmup *
                                                                                 self.cfg.train.steps))

    def distill_index(self) -> int:
        """Which [CLS] token feeds self-distillation: ``ssl.distill_cls`` with two, the only one otherwise."""
        return self.cfg.ssl.distill_cls - 1 if self.flags["dual_cls"] else 0

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The features every term of the objective needs (:func:`tips_loss` composes them): the global crop's
        [CLS] tokens, the alt-text (and synthetic-caption) embeddings and the logit scale; with self-distillation
        the student head on the local crops' [CLS] and the EMA teacher's head on the global crop's; with MIM the
        student head on the masked crop's patches and the teacher's on the unmasked patches."""
        flags = self.flags
        feats = {"cls": self.vit(batch["image"]).cls, "alt": self.text(batch["alt_ids"], batch["alt_keep"]),
                 "scale": self.scale()}
        if flags["dual_cls"]:
            feats["syn"] = self.text(batch["syn_ids"], batch["syn_keep"])
        if not (flags["distill"] or flags["mim"]):
            return feats
        k = self.distill_index()
        with torch.no_grad():
            t_out = self.teacher["vit"](batch["image"])
        if flags["distill"]:
            m, b = batch["locals"].shape[:2]
            feats["student_local"] = self.head(self.vit(batch["locals"].flatten(0, 1)).cls[:, k]).view(m, b, -1)
            with torch.no_grad():
                feats["teacher_global"] = self.teacher["head"](t_out.cls[:, k])
        if flags["mim"]:
            feats["student_patch"] = self.ibot_head(self.vit(batch["image"], batch["mask"]).patches)
            with torch.no_grad():
                feats["teacher_patch"] = self.teacher["ibot_head"](t_out.patches)
        return feats


class TeacherHooks(StepHooks):
    """Advance the schedules' step before each update; move the EMA teacher after it (momentum cosine
    from ``ssl.start_momentum(train.steps)`` to 1)."""

    def before_step(self, step: int, model: nn.Module) -> None:
        model.step.fill_(step)

    def after_step(self, step: int, model: nn.Module) -> dict[str, float]:
        if not hasattr(model, "teacher"):
            return {}
        momentum = teacher_momentum(model.cfg.ssl.start_momentum(model.cfg.train.steps), step, model.cfg.train.steps)
        ema_update(model.teacher, model.student(), momentum)
        return {"teacher_momentum": momentum}
