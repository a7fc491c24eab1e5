"""The paper's claims that the comparison can test and its numbers (notes Sec. 5-6): shown beside ours."""

from __future__ import annotations

from ..claims import Claim

# v1 Table (IPO-based, Iter3): AlpacaEval 2 length-controlled win rate and response length; our "dpo" is the
# paper's PBAA with a DPO base ("PBAA-DPO"), our "gold" its UltraFeedback + IPO. v2 reward models: RewardBench
# average (each set 60k pairs).
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


CLAIMS = (
    Claim("sso_vs_pbaa", "SSO beats modified PBAA after the last iteration (gold score, held-out queries)",
          "AlpacaEval 2 LC 15.0 vs 2.6, Llama3.1-8B-SFT, iter 3 (v1 table)", "gold.sso.final", "gold.pbaa.final",
          "higher"),
    Claim("sso_vs_dpo", "SSO beats PBAA with a DPO base after the last iteration",
          "AlpacaEval 2 LC 36.2 vs 32.9, Qwen2-7B-Instruct (v1 table)", "gold.sso.final", "gold.dpo.final", "higher"),
    Claim("sso_vs_sft", "SSO improves on the SFT policy it starts from",
          "AlpacaEval 2 LC 15.0 vs 6.4, Llama3.1-8B-SFT (v1 table)", "gold.sso.final", "gold.sft.iter0", "higher"),
    Claim("sso_vs_gold", "SSO beats the same loss trained on pairs the gold judge labelled (human-labelled data)",
          "AlpacaEval 2 LC 15.0 vs 10.5 (UltraFeedback + IPO), Llama3.1-8B-SFT, iter 3 (v1 table)",
          "gold.sso.final", "gold.gold.final", "higher"),
    Claim("rm_sso_vs_gold", "a reward model trained on SSO pairs beats one trained on as many human-labelled pairs",
          "RewardBench 80.0 vs 79.5 (UltraFeedback), Llama3-8B-Instruct RM", "rm_acc.sso_pairs",
          "rm_acc.gold_pairs", "higher"),
)
