"""The paper's claims that the comparison can test and its numbers (notes 4-5): shown beside ours."""

from __future__ import annotations

from ..claims import Claim

# Table 2 of the paper: DCLM test loss extrapolated to 1T tokens (teacher Qwen1.5-1.8B), and Table 1's
# average zero-shot accuracy; students 200M / 500M / 1.2B.
PAPER = {
    "paper.dclm_loss_1T.no_kd.200M": 3.35, "paper.dclm_loss_1T.vanilla_kd.200M": 3.39,
    "paper.dclm_loss_1T.miniplm.200M": 3.28, "paper.dclm_loss_1T.no_kd.500M": 3.12,
    "paper.dclm_loss_1T.vanilla_kd.500M": 3.12, "paper.dclm_loss_1T.miniplm.500M": 3.06,
    "paper.avg_acc.no_kd.200M": 39.9, "paper.avg_acc.vanilla_kd.200M": 39.9, "paper.avg_acc.miniplm.200M": 41.3,
    "paper.avg_acc.no_kd.500M": 43.2, "paper.avg_acc.vanilla_kd.500M": 43.6, "paper.avg_acc.miniplm.500M": 44.8,
    "paper.cross_family_dclm_loss.no_kd.llama212M": 3.52, "paper.cross_family_dclm_loss.miniplm.llama212M": 3.43,
}


BALANCED = "domain-balanced held-out loss"
# What says why a student comparison came out as it did: how much better the teacher is than the reference
# (difference sampling selects noise when they are alike), how many tokens each parameter saw (the paper's 250),
# how often the difference score is negative, and the pooled (in-distribution) losses beside the balanced ones.
WHY = ("teacher_ref_gap", "tokens_per_param", "difference_score_negative_fraction")


def _pooled(*methods: str) -> tuple[str, ...]:
    return tuple(f"student_val_loss_pooled.{m}" for m in methods)


CLAIMS = (
    Claim("miniplm_vs_no_kd", f"the MiniPLM student beats no KD at equal training tokens (first student, {BALANCED})",
          "DCLM loss 3.28 vs 3.35, 200M student (Table 2)", "student_val_loss.miniplm",
          "student_val_loss.no_kd", "lower", diagnostics=WHY + _pooled("miniplm", "no_kd")),
    Claim("miniplm_vs_vanilla_kd", f"the MiniPLM student beats compute-matched Vanilla KD ({BALANCED})",
          "DCLM loss 3.28 vs 3.39, 200M student (Table 2)", "student_val_loss.miniplm",
          "student_val_loss.vanilla_kd", "lower", diagnostics=("student_steps", "flops.vanilla_kd", "flops.miniplm")),
    Claim("miniplm_vs_vanilla_kd_steps", f"the MiniPLM student beats step-matched Vanilla KD ({BALANCED}; the "
          "paper matches compute, which at this size leaves Vanilla KD a fraction of the steps)",
          "not in the paper (its comparison is compute-matched)", "student_val_loss.miniplm",
          "student_val_loss.vanilla_kd_steps", "lower", diagnostics=("teacher_val_loss", "teacher_ref_gap")),
    Claim("miniplm_vs_rho", f"MiniPLM's selection beats RHO-LOSS's at equal training tokens ({BALANCED})",
          "not in the paper (the seed likens MiniPLM to RHO-LOSS, arXiv 2206.07137)", "student_val_loss.miniplm",
          "student_val_loss.rho", "lower", diagnostics=("selection_overlap.miniplm_rho", *_pooled("miniplm", "rho"))),
    Claim("cross_family", f"MiniPLM's refined data also helps a student of another family (Llama, {BALANCED})",
          "DCLM loss 3.43 vs 3.52, Llama 212M (cross-family table)", "val_loss_balanced.miniplm.llama",
          "val_loss_balanced.no_kd.llama", "lower", diagnostics=("tokens_per_param.llama", "teacher_ref_gap")),
)
