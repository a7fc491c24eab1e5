"""The variants compared in arXiv 2410.16682 (the paper's numbers are in :mod:`.paper`).

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
