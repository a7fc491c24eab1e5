"""The paper's claims that the comparison can test and its numbers (notes Sec. 5-6): shown beside ours."""

from __future__ import annotations

from ..claims import Claim

# v1 Table (IPO-based, Iter3): AlpacaEval 2 length-controlled win rate and response length; our "dpo" is the
# paper's PBAA with a DPO base ("PBAA-DPO"), "sso_dpo" its DPO-based SSO, our "gold" its UltraFeedback + IPO.
# v2 reward models: RewardBench average (each set 60k pairs).
PAPER = {
    "paper.ae2_lc.sft.llama31_8b_sft": 6.4, "paper.ae2_lc.pbaa.llama31_8b_sft": 2.6,
    "paper.ae2_lc.sso.llama31_8b_sft": 15.0, "paper.ae2_lc.gold.llama31_8b_sft": 10.5,
    "paper.ae2_lc.gold.qwen2_7b_instruct": 19.3, "paper.ae2_lc.gold.llama31_8b_instruct": 39.3,
    "paper.ae2_lc.sft.qwen2_7b_instruct": 33.2, "paper.ae2_lc.pbaa.qwen2_7b_instruct": 30.7,
    "paper.ae2_lc.dpo.qwen2_7b_instruct": 32.9, "paper.ae2_lc.sso.qwen2_7b_instruct": 36.2,
    "paper.ae2_lc.sft.llama31_8b_instruct": 32.8, "paper.ae2_lc.pbaa.llama31_8b_instruct": 27.2,
    "paper.ae2_lc.dpo.llama31_8b_instruct": 40.0, "paper.ae2_lc.sso.llama31_8b_instruct": 39.2,
    "paper.response_length.sft.qwen2_7b_instruct": 1786, "paper.response_length.pbaa.qwen2_7b_instruct": 4458,
    "paper.response_length.sso.qwen2_7b_instruct": 2789, "paper.response_length.pbaa.llama31_8b_sft": 9160,
    "paper.rewardbench.ultrafeedback.llama3_8b_instruct_rm": 79.5, "paper.rewardbench.pbaa.llama3_8b_instruct_rm": 78.9,
    "paper.rewardbench.sso.llama3_8b_instruct_rm": 80.0, "paper.rewardbench.skywork.llama3_8b_instruct_rm": 84.5,
    "paper.rewardbench.skywork_sso.llama3_8b_instruct_rm": 86.3,
    "paper.rewardbench.skywork_ultrafeedback.llama3_8b_instruct_rm": 85.1,
}


# What says why a policy comparison came out as it did: each side's training-label agreement with the gold judge,
# the held-out Accuracy feature (near zero for every policy of this size) and response length.
def _policy_why(*methods: str) -> tuple[str, ...]:
    return tuple(k for m in methods for k in (f"label_acc.{m}.final", f"gold_feature.{m}.Accuracy", f"length.{m}"))


RM_WHY = tuple(f"rm_acc_{f}.{d}" for d in ("sso_pairs", "gold_pairs")
               for f in ("accuracy", "safety", "logicality", "engagement", "concision"))
CLAIMS = (
    Claim("sso_vs_pbaa", "SSO beats modified PBAA after the last iteration (gold score, held-out queries)",
          "AlpacaEval 2 LC 15.0 vs 2.6, Llama3.1-8B-SFT, iter 3 (v1 table)", "gold.sso.final", "gold.pbaa.final",
          "higher", diagnostics=_policy_why("sso", "pbaa")),
    Claim("sso_dpo_vs_pbaa_dpo", "SSO with a DPO base beats PBAA with a DPO base after the last iteration",
          "AlpacaEval 2 LC 37.2 vs 32.9, Qwen2-7B-Instruct (v1, DPO-based)", "gold.sso_dpo.final", "gold.dpo.final",
          "higher", diagnostics=_policy_why("sso_dpo", "dpo")),
    Claim("sso_vs_sft", "SSO improves on the SFT policy it starts from",
          "AlpacaEval 2 LC 15.0 vs 6.4, Llama3.1-8B-SFT (v1 table)", "gold.sso.final", "gold.sft.iter0", "higher",
          diagnostics=("label_acc.sso.final", "gold_feature.sso.Accuracy", "gold_feature.sft.Accuracy")),
    Claim("sso_vs_gold", "SSO beats the same loss trained on off-policy annotated pairs (the UltraFeedback analogue)",
          "AlpacaEval 2 LC 15.0 vs 10.5 (UltraFeedback + IPO), Llama3.1-8B-SFT, iter 3 (v1 table)",
          "gold.sso.final", "gold.gold.final", "higher", diagnostics=_policy_why("sso", "gold")),
    Claim("label_acc_sso_vs_pbaa", "SSO's synthetic preferences agree with the gold judge more often than PBAA's "
          "(last iteration)", "preference accuracy 0.85-0.93 across iterations, above PBAA's (Fig. 3)",
          "label_acc.sso.final", "label_acc.pbaa.final", "higher",
          diagnostics=("label_acc.sso.iter1", "label_acc.pbaa.iter1", "label_ties.sso.final", "label_ties.pbaa.final")),
    Claim("rm_sso_vs_gold", "a reward model trained on SSO pairs beats one trained on as many annotated pairs "
          "(independent test set: single-feature contrasts on held-out queries, mean over features)",
          "RewardBench 80.0 vs 79.5 (UltraFeedback), Llama3-8B-Instruct RM", "rm_acc.sso_pairs",
          "rm_acc.gold_pairs", "higher", diagnostics=RM_WHY),
    Claim("rrm", "RRM augmentation raises a reward model's accuracy on the independent test set (annotated pairs)",
          "not in the SSO paper (the seed ties SSO to RRM, arXiv 2409.13156)", "rm_acc.gold_pairs_rrm",
          "rm_acc.gold_pairs", "higher", diagnostics=("rm_pairs.gold_pairs", "rm_pairs.gold_pairs_rrm")),
)
