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


def _lr(id: str, v: str, ref: str, statement: str, paper: str) -> Claim:
    """``v``'s max stable LR is higher than ``ref``'s (a log ratio); diagnostics: how each side's edge diverged,
    the peak attention logits at the edge and below it, and points the search found stalled."""
    why = tuple(f"{k}.{x}" for x in (v, ref) for k in ("max_stable_lr", "edge_label", "edge_attn_logit",
                                                        "stable_attn_logit", "stalled_points"))
    return Claim(id, statement, paper, f"max_stable_lr.{v}", f"max_stable_lr.{ref}", "higher", "log_ratio",
                 diagnostics=why)


def _ppl(id: str, v: str, ref: str, statement: str, paper: str) -> Claim:
    """``v``'s perplexity at ``ppl_lr`` is lower than ``ref``'s; diagnostics: how far each run was still
    improving at the end (Table 4 compares runs after 0.2T tokens; ours stop after a few hundred steps) and each
    side's perplexity at its own best searched rate (a variant slower at ``ppl_lr`` may reach as low elsewhere)."""
    return Claim(id, statement, paper, f"ppl.{v}", f"ppl.{ref}", "lower",
                 diagnostics=tuple(f"{k}.{x}" for x in (v, ref) for k in ("late_val_drop", "best_ppl", "best_ppl_lr")))


RAISES = "raises the max stable LR of"
LOWERS = "lowers perplexity against the baseline at a moderate LR"
X15, X67 = "1.5x: 60e-3 vs 40e-3 (§B.4)", "6.7x: 40e-3 vs 6e-3 (§B.4)"
UNTESTED = "not in the paper (the seed's suggestion)"
CLAIMS = (
    _lr("qk_norm_cap_lr", "qk_norm_cap", "qk_norm", f"QK_norm_cap {RAISES} QK_norm", X15),
    _lr("qkv_norm_lr", "qkv_norm", "qk_norm", f"QKV_norm {RAISES} QK_norm", X15),
    _lr("qk_norm_lr", "qk_norm", "baseline", f"QK_norm {RAISES} the baseline", X67),
    _lr("qk_fc_norm_lr", "qk_fc_norm", "baseline", f"QK_FC_norm {RAISES} the baseline", X67),
    _lr("soft_cap_lr", "soft_cap", "baseline", f"soft-capping alone {RAISES} the baseline", X67),
    _lr("softcap_postnorm_lr", "softcap_postnorm", "baseline", f"soft-capping with post-norms {RAISES} the baseline",
        UNTESTED),
    _lr("softcap_postnorm_lr_vs_qk_norm", "softcap_postnorm", "qk_norm",
        f"soft-capping with post-norms {RAISES} QK_norm", UNTESTED),
    _ppl("qk_norm_ppl", "qk_norm", "baseline", f"QK_norm {LOWERS}", "10.84 vs 11.19 (Table 4)"),
    _ppl("qkv_norm_ppl", "qkv_norm", "baseline", f"QKV_norm {LOWERS}", "10.85 vs 11.19 (Table 4)"),
    _ppl("qk_norm_cap_ppl", "qk_norm_cap", "baseline", f"QK_norm_cap {LOWERS}", "11.00 vs 11.19 (Table 4)"),
    _ppl("qk_fc_norm_ppl", "qk_fc_norm", "baseline", f"QK_FC_norm {LOWERS}", "10.87 vs 11.19 (Table 4)"),
    _ppl("qk_norm_ppl_vs_soft_cap", "qk_norm", "soft_cap",
         "soft-capping alone does not lower perplexity as QK_norm does (QK_norm below soft_cap)",
         "10.84 vs 11.24 (Table 4; soft_cap vs the baseline's 11.19 is not significant)"),
)
