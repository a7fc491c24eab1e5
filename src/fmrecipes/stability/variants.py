"""The variants compared in arXiv 2410.16682 and the paper's numbers (notes §B.4, §B.5).

Each variant is a set of :class:`fmrecipes.core.gpt.GPTConfig` switches on top of the pre-LN baseline.
"""

from __future__ import annotations

CAP = 50.0  # the paper's soft-cap, Gemma 2's attention value

VARIANTS: dict[str, dict] = {
    "baseline": {},
    "qk_norm": {"qk_norm": True},
    "qk_fc_norm": {"qk_norm": True, "post_proj_norm": True, "post_fc2_norm": True},
    "qkv_norm": {"qkv_norm": True},
    "qk_norm_cap": {"qk_norm": True, "attn_logit_cap": CAP},
    "soft_cap": {"attn_logit_cap": CAP},
    # Not in the paper: soft-capping together with the post-norms (the untested combination).
    "softcap_postnorm": {"attn_logit_cap": CAP, "post_proj_norm": True, "post_fc2_norm": True},
}

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
