"""The paper's claims that the LR sweep can test and its numbers (notes §B.4, §B.5): shown beside ours."""

from __future__ import annotations

from ..claims import Claim

# Largest learning rate that converged in the paper's sweep over {6,8,20,40,60,80}e-3 (830M GPT, one seed;
# secondary sources, §B.4). QK_norm_cap did not diverge anywhere in the sweep (>= 60e-3).
PAPER_MAX_STABLE_LR = {"baseline": 6e-3, "qk_norm": 40e-3, "qk_fc_norm": 40e-3, "qkv_norm": 60e-3,
                       "qk_norm_cap": 60e-3, "soft_cap": 40e-3}
PAPER_FIRST_DIVERGED_LR: dict[str, float | str] = {"baseline": 8e-3, "qk_norm": 60e-3, "qk_fc_norm": 60e-3,
                                                   "qkv_norm": 80e-3, "soft_cap": 60e-3,
                                                   "qk_norm_cap": "none in grid"}
# Perplexity at LR 3e-4 after 0.2T tokens (Table 4, ±0.1 at 95%; §B.5).
PAPER_PPL = {"baseline": 11.19, "soft_cap": 11.24, "qkv_norm": 10.85, "qk_norm_cap": 11.00, "qk_norm": 10.84,
             "qk_fc_norm": 10.87}


def paper_numbers() -> dict[str, float | str]:
    """The paper's numbers as ``paper.<metric>.<variant>`` summary keys."""
    out: dict[str, float | str] = {}
    for v, lr in PAPER_MAX_STABLE_LR.items():
        out[f"paper.max_stable_lr.{v}"] = lr
        out[f"paper.lr_gain.{v}"] = round(lr / PAPER_MAX_STABLE_LR["qk_norm"], 3)
    for v, lr in PAPER_FIRST_DIVERGED_LR.items():
        out[f"paper.first_diverged_lr.{v}"] = lr
    for v, ppl in PAPER_PPL.items():
        out[f"paper.ppl.{v}"] = ppl
    return out


CLAIMS = (
    Claim("qk_norm_cap_lr", "QK_norm_cap raises the max stable LR of QK_norm", "1.5x: 60e-3 vs 40e-3 (§B.4)",
          "max_stable_lr.qk_norm_cap", "max_stable_lr.qk_norm", "higher", "log_ratio"),
    Claim("qkv_norm_lr", "QKV_norm raises the max stable LR of QK_norm", "1.5x: 60e-3 vs 40e-3 (§B.4)",
          "max_stable_lr.qkv_norm", "max_stable_lr.qk_norm", "higher", "log_ratio"),
    Claim("qk_norm_lr", "QK_norm raises the max stable LR of the baseline", "6.7x: 40e-3 vs 6e-3 (§B.4)",
          "max_stable_lr.qk_norm", "max_stable_lr.baseline", "higher", "log_ratio"),
    Claim("qk_norm_ppl", "QK_norm lowers perplexity against the baseline at a moderate LR",
          "10.84 vs 11.19 (Table 4)", "ppl.qk_norm", "ppl.baseline", "lower"),
)
