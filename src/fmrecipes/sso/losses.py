"""SSO losses as pure functions of sequence log-probs (arXiv 2410.17131; notes Sec. 2).

Notation: s(y|c) = sum of log pi(y|c) over response tokens, a(y|c) = s(y|c)/|y|. Every function takes the
policy's and the frozen reference's summed log-probs and the response lengths, keyed by the six sequences

    "x,y+"  "x,y-"   (main pair: prompt x without principle)
    "x+,y+" "x+,y-"  (steer +: good-principle prompt)
    "x-,y0" "x-,y+"  (steer -: bad-principle prompt; y0, sampled without principle, beats y+)

and returns ``(loss, metrics)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from ..errors import ConfigError

Logps = dict[str, torch.Tensor]
PAIRS = {"": ("x,y+", "x,y-"), "p_": ("x+,y+", "x+,y-"), "n_": ("x-,y0", "x-,y+")}  # (chosen, rejected)
SEQUENCES = tuple(s for pair in PAIRS.values() for s in pair)


@dataclass
class LossConfig:
    base: Literal["ipo", "dpo"] = "ipo"  # L_base; v1 uses IPO
    beta: float | None = None  # None: 0.2 for IPO (official train.sh), 0.1 for DPO
    steering: bool = True  # G = L_base(x+, y+, y-) + L_base(x-, y0, y+)  ("G_function")
    weight: bool = True  # W = sigmoid(-(alpha·a(y+|x) + (1-alpha)·a(y-|x)))  ("W_function")
    theta: float = 0.1  # G's coefficient ("G_beta")
    alpha: float = 0.66  # W's mix ("W_alpha")
    # Open questions of the notes, as options; defaults follow the official code.
    detach_w: bool = False  # the code does not detach W, so W·G also raises a(y+|x) and a(y-|x)
    w_scope: Literal["steering", "all"] = "steering"  # W scales G only (code) or also L_base (a review's reading)
    sft_weight: float = 0.0  # "pref_ftx": γ·(-a(y+|x) - θ·a(y+|x+) - θ·a(y0|x-)); off in the paper
    variant: Literal["v1", "v2"] = "v1"  # v2: train a data generator with L+ + L-, then DPO the policy on its data
    generator_sft: float = 0.1  # v2's γ on L_sft(x+, y+) and L_sft(x-, y0)

    def validate(self) -> None:
        if self.beta is not None and self.beta <= 0:
            raise ConfigError(f"loss.beta={self.beta} must be positive")
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"loss.alpha={self.alpha} must be in [0, 1]")

    @property
    def beta_value(self) -> float:
        return self.beta if self.beta is not None else (0.2 if self.base == "ipo" else 0.1)

    def sequences(self) -> tuple[str, ...]:
        """The sequences this loss reads (so a baseline computes only the main pair)."""
        return SEQUENCES if (self.steering or self.sft_weight) else PAIRS[""]


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float) -> torch.Tensor:
    """DPO (Rafailov et al. 2023, Eq. 7): -log sigmoid(beta·h), h from summed log-prob ratios; per example."""
    h = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)
    return -F.logsigmoid(beta * h)


def ipo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, len_chosen: torch.Tensor, len_rejected: torch.Tensor,
             beta: float) -> torch.Tensor:
    """IPO (Azar et al. 2023, Eq. 17) with length-averaged log-ratios as in TRL / LLaMA-Factory:
    (h - 1/(2·beta))², h = a(yw) - a_ref(yw) - a(yl) + a_ref(yl); per example."""
    h = ((policy_chosen - ref_chosen) / len_chosen.clamp_min(1)
         - (policy_rejected - ref_rejected) / len_rejected.clamp_min(1))
    return (h - 1 / (2 * beta)) ** 2


def pair_loss(cfg: LossConfig, pol: Logps, ref: Logps, lengths: Logps, chosen: str, rejected: str) -> torch.Tensor:
    """L_base(c, yw, yl) per example for one of the three pairs."""
    args = (pol[chosen], pol[rejected], ref[chosen], ref[rejected])
    if cfg.base == "dpo":
        return dpo_loss(*args, cfg.beta_value)
    return ipo_loss(*args, lengths[chosen].to(pol[chosen].dtype), lengths[rejected].to(pol[chosen].dtype),
                    cfg.beta_value)


def steering_weight(avg_chosen_x: torch.Tensor, avg_rejected_x: torch.Tensor, alpha: float) -> torch.Tensor:
    """W = sigmoid(-(alpha·a(y+|x) + (1-alpha)·a(y-|x))) in (0.5, 1) since a < 0; larger when y+ and y-
    are unlikely without a principle (inspired by WPO)."""
    return torch.sigmoid(-(alpha * avg_chosen_x + (1 - alpha) * avg_rejected_x))


def _avg(pol: Logps, lengths: Logps, key: str) -> torch.Tensor:
    return pol[key] / lengths[key].clamp_min(1).to(pol[key].dtype)


def _pair_metrics(cfg: LossConfig, pol: Logps, ref: Logps) -> dict[str, torch.Tensor]:
    """TRL's logged quantities for each pair present: rewards beta·(s - s_ref), accuracies and margins."""
    out = {}
    for prefix, (c, r) in PAIRS.items():
        if c in pol and r in pol:
            rc, rr = cfg.beta_value * (pol[c] - ref[c]).detach(), cfg.beta_value * (pol[r] - ref[r]).detach()
            out.update({f"{prefix}rewards/chosen": rc.mean(), f"{prefix}rewards/rejected": rr.mean(),
                        f"{prefix}rewards/accuracies": (rc > rr).float().mean(),
                        f"{prefix}rewards/margins": (rc - rr).mean()})
    return out


def sso_loss(cfg: LossConfig, pol: Logps, ref: Logps, lengths: Logps) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """SSO v1 (official ``ssotrainer.py``), batch mean of

        L = L_base(x, y+, y-) + W·theta·G,   G = L_base(x+, y+, y-) + L_base(x-, y0, y+)

    With ``weight`` off W = 1; with ``steering`` off and ``weight`` on, L = W·L_base (as the code does);
    with both off this is plain xPO on (x, y+, y-): the "modified PBAA" / DPO baselines.
    """
    base = pair_loss(cfg, pol, ref, lengths, *PAIRS[""])
    metrics = _pair_metrics(cfg, pol, ref)
    w = torch.ones_like(base)
    if cfg.weight:
        w = steering_weight(_avg(pol, lengths, "x,y+"), _avg(pol, lengths, "x,y-"), cfg.alpha)
        if cfg.detach_w:
            w = w.detach()
        metrics["W"] = w.detach().mean()
    if cfg.steering:
        g = pair_loss(cfg, pol, ref, lengths, *PAIRS["p_"]) + pair_loss(cfg, pol, ref, lengths, *PAIRS["n_"])
        metrics["G"] = g.detach().mean()
        loss = (w * base if cfg.w_scope == "all" else base) + w * cfg.theta * g
    else:
        loss = w * base
    if cfg.sft_weight:
        sft = -_avg(pol, lengths, "x,y+") - cfg.theta * (_avg(pol, lengths, "x+,y+") + _avg(pol, lengths, "x-,y0"))
        loss = loss + cfg.sft_weight * sft
    metrics["L_base"] = base.detach().mean()
    return loss.mean(), metrics


def generator_loss(cfg: LossConfig, pol: Logps, ref: Logps, lengths: Logps) -> tuple[torch.Tensor, dict]:
    """SSO v2's data-generator objective (v2 Eq. 3-4): L+ + L-, with
    L+ = L_base(x+, y+, y-) + γ·L_sft(x+, y+),  L- = L_base(x-, y0, y+) + γ·L_sft(x-, y0),  L_sft = -a(y|c)."""
    plus = pair_loss(cfg, pol, ref, lengths, *PAIRS["p_"]) - cfg.generator_sft * _avg(pol, lengths, "x+,y+")
    minus = pair_loss(cfg, pol, ref, lengths, *PAIRS["n_"]) - cfg.generator_sft * _avg(pol, lengths, "x-,y0")
    metrics = _pair_metrics(cfg, pol, ref)
    metrics.update({"L+": plus.detach().mean(), "L-": minus.detach().mean()})
    return (plus + minus).mean(), metrics
