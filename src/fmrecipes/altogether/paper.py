"""The paper's claims that the comparison can test (notes B.6-B.7); its numbers were not retrieved."""

from __future__ import annotations

from ..claims import Claim

NOT_RETRIEVED = "direction only: the paper's numbers were not retrieved (notes B.7)"

CLAIMS = (
    Claim("keeps_brands", "re-aligned captions keep the alt-text's brands (against the same captioner never shown "
          "alt-text)", NOT_RETRIEVED, "brand_retention.altogether", "brand_retention.no_alt", "higher"),
    Claim("fewer_hallucinations", "re-aligned captions hallucinate less than the alt-text they re-align",
          NOT_RETRIEVED, "hallucination.altogether", "hallucination.alt_text", "lower"),
    Claim("alt_text_helps", "reading the alt-text brings captions closer to the re-aligned references (CIDEr-D)",
          NOT_RETRIEVED + "; ablation with/without the alt-text prompt", "cider.altogether", "cider.no_alt",
          "higher"),
    Claim("downstream_zeroshot", "a CLIP trained on alt-text mixed with 15% Altogether captions beats one on "
          "alt-text at zero-shot classification", "stated in the abstract; MetaCLIP 1.2 syn_ratio 0.15 (notes B.6)",
          "clip_zeroshot.mix15", "clip_zeroshot.alt_text", "higher"),
)
