"""TIPS' losses (notes A.3):

    L = ½·[L_CLIP(e_cls1, t_web) + L_CLIP(e_cls2, t_syn)] + α·L_distill + β·L_mask    (α = 1, β = 2)
        [+ γ·L_KoLeo, DINOv2's regulariser, off by default: TIPS does not state it]

    L_distill = -Σ_m softmax((p_t - c)/τ_t) · log softmax(p_s^m/τ_s)     (DINO; m over local crops)
    L_mask    = same cross-entropy per masked patch, teacher on the unmasked crop (iBOT)

With one [CLS] (the alt-text-only rows of the ablation) the contrastive term is L_CLIP(e_cls1, t_web). The DINO
and iBOT terms are pure functions of logits; :func:`tips_loss` is the training loop's loss function, which runs the
model, combines the terms and moves the teacher centres.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.checkpoint import unwrap
from ..core.contrastive import clip_loss
from .ssl import update_center


def teacher_probs(teacher_logits: torch.Tensor, center: torch.Tensor, temperature: float) -> torch.Tensor:
    """Centred and sharpened teacher distribution softmax((p_t - c)/τ_t), without gradient."""
    return F.softmax((teacher_logits.detach().float() - center) / temperature, dim=-1)


def dino_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, center: torch.Tensor,
              student_temp: float, teacher_temp: float) -> torch.Tensor:
    """Mean over local crops m and images b of -Σ_k q_t[b, k] log softmax(p_s[m, b]/τ_s)_k.

    ``student_logits`` [M, B, K] (M local crops), ``teacher_logits`` [B, K] (the global crop)."""
    q = teacher_probs(teacher_logits, center, teacher_temp)
    log_p = F.log_softmax(student_logits.float() / student_temp, dim=-1)
    return -(q[None] * log_p).sum(-1).mean()


@torch.no_grad()
def dino_diagnostics(student_logits: torch.Tensor, teacher_logits: torch.Tensor, center: torch.Tensor,
                     student_temp: float, teacher_temp: float) -> dict[str, torch.Tensor]:
    """What shows a collapse of self-distillation (DINO Sec. 5.3), in nats: ``teacher_entropy``, the mean entropy
    of each image's teacher distribution (log K: uniform collapse); ``teacher_batch_entropy``, the entropy of the
    batch's mean teacher distribution (0: every image on one prototype); ``kl``, the mean KL(teacher || student)
    over local crops and images (the distillation loss minus the teacher entropy)."""
    q = teacher_probs(teacher_logits, center, teacher_temp)
    entropy = -(q * q.clamp_min(1e-30).log()).sum(-1)
    mean_q = q.mean(0)
    log_p = F.log_softmax(student_logits.float() / student_temp, dim=-1)
    ce = -(q[None] * log_p).sum(-1)
    return {"teacher_entropy": entropy.mean(), "kl": (ce - entropy[None]).mean(),
            "teacher_batch_entropy": -(mean_q * mean_q.clamp_min(1e-30).log()).sum()}


def ibot_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor,
              center: torch.Tensor, student_temp: float, teacher_temp: float) -> torch.Tensor:
    """iBOT's patch loss over masked patches only: per image the mean cross-entropy over its masked patches,
    then the mean over images. Logits [B, N, K], ``mask`` bool [B, N]."""
    q = teacher_probs(teacher_logits, center, teacher_temp)
    ce = -(q * F.log_softmax(student_logits.float() / student_temp, dim=-1)).sum(-1)
    m = mask.float()
    return ((ce * m).sum(1) / m.sum(1).clamp_min(1.0)).mean()


def koleo_loss(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """DINOv2's KoLeo regulariser (Sablayrolles et al. 2019) on a batch of features [B, D]: -mean_i log d_i, d_i
    the distance from the L2-normalised x_i to its nearest other row (found without gradient, as DINOv2 does).
    It spreads the batch's features apart."""
    x = F.normalize(x.float(), p=2, dim=-1, eps=eps)
    with torch.no_grad():
        nearest = (x @ x.T).fill_diagonal_(-2.0).argmax(1)
    return -torch.log(F.pairwise_distance(x, x[nearest], p=2, eps=eps) + eps).mean()


def tips_loss(model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L = ½·[L_CLIP(e_cls1, t_alt) + L_CLIP(e_cls2, t_syn)] + distill_weight·L_DINO + mim_weight·L_iBOT (notes
    A.3) from the model's features; the teacher centres move after their term is computed."""
    tips = unwrap(model)
    s, flags = tips.cfg.ssl, tips.flags
    feats = model(batch)
    scale = feats["scale"]
    clip_alt, acc = clip_loss(feats["cls"][:, 0], feats["alt"], scale)
    metrics = {"clip_alt": clip_alt.detach(), "clip_acc": acc, "logit_scale": scale.detach()}
    loss = clip_alt
    if flags["dual_cls"]:
        clip_syn, _ = clip_loss(feats["cls"][:, 1], feats["syn"], scale)
        loss = 0.5 * (clip_alt + clip_syn)
        metrics["clip_syn"] = clip_syn.detach()
    temp = tips.teacher_temp()
    if flags["distill"]:
        distill = dino_loss(feats["student_local"], feats["teacher_global"], tips.center_cls, s.student_temp, temp)
        metrics.update({f"dino_{k}": v for k, v in dino_diagnostics(
            feats["student_local"], feats["teacher_global"], tips.center_cls, s.student_temp, temp).items()})
        update_center(tips.center_cls, feats["teacher_global"], s.center_momentum)
        loss = loss + s.distill_weight * distill
        metrics["distill"] = distill.detach()
        if s.koleo_weight:  # DINOv2's, on the student's global-crop [CLS] that feeds the distillation
            koleo = koleo_loss(feats["cls"][:, tips.distill_index()])
            loss = loss + s.koleo_weight * koleo
            metrics["koleo"] = koleo.detach()
    if flags["mim"]:
        mask = batch["mask"]
        mim = ibot_loss(feats["student_patch"], feats["teacher_patch"], mask, tips.center_patch, s.student_temp,
                        temp)
        update_center(tips.center_patch, feats["teacher_patch"][mask], s.center_momentum)
        loss = loss + s.mim_weight * mim
        metrics["mim"] = mim.detach()
    return loss, metrics
