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


CLAIMS = (
    Claim("miniplm_vs_no_kd", "the MiniPLM student beats no KD at equal training tokens (first student, held-out "
          "loss)", "DCLM loss 3.28 vs 3.35, 200M student (Table 2)", "student_val_loss.miniplm",
          "student_val_loss.no_kd", "lower"),
    Claim("miniplm_vs_vanilla_kd", "the MiniPLM student beats compute-matched Vanilla KD",
          "DCLM loss 3.28 vs 3.39, 200M student (Table 2)", "student_val_loss.miniplm",
          "student_val_loss.vanilla_kd", "lower"),
    Claim("cross_family", "MiniPLM's refined data also helps a student of another family (Llama)",
          "DCLM loss 3.43 vs 3.52, Llama 212M (cross-family table)", "val_loss.miniplm.llama", "val_loss.no_kd.llama",
          "lower"),
)
