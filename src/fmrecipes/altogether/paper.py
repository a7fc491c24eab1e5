"""The paper's claims that the comparison can test (notes B.6-B.7); its numbers were not retrieved."""

from __future__ import annotations

from ..claims import Claim
from ..recipe import ReportTable

NOT_RETRIEVED = "direction only: the paper's numbers were not retrieved (notes B.7)"

SEED_COMMENT = "beyond the paper: the seed's comment (web data's strength is its diversity; re-aligning keeps it)"
# whether anything can copy a brand: the pre-trained decoder's gate, and the copy probe after each stage
COPYING = ("decoder_lm.copy_gain", "copy_probe_stage1.brand.p_true", "copy_probe_stage1.brand.p_swapped",
           "copy_probe.brand.p_true", "copy_probe.brand.p_swapped", "brand_mention.altogether")
# whether the frozen embedding tells the decoder what is in the image
ENCODER = ("encoder_probe.class", "encoder_probe.class_majority", "encoder_probe.colour",
           "encoder_probe.colour_majority")

# the seed's comment: image self-supervised objectives for image-text generative models; the same captioner on a
# self-supervised encoder (tips row C2: contrastive + distillation + MIM) and on the contrastive-only one (row A).
# AUTO_ENCODERS: those two tips variants, which differ in the image self-supervision alone (`compare_encoders:
# [auto]` takes them); a compared encoder's metrics are keyed by `compared(<its tips variant>)`.
SSL_COMMENT = "beyond the paper: the seed's comment (image self-supervision for image-text generative models)"
AUTO_ENCODERS = ("clip_alt_distill_mim", "clip_alt")


def compared(variant: str) -> str:
    """The system name of the captioner trained on the encoder of tips variant ``variant``."""
    return f"enc_{variant}"


SSL, CLIP_ONLY = (compared(v) for v in AUTO_ENCODERS)
SSL_PROBES = tuple(f"encoder_probe.{attr}.{enc}" for attr in ("class", "colour") for enc in (SSL, CLIP_ONLY))

CLAIMS = (
    Claim("keeps_brands", "re-aligned captions keep the alt-text's brands (against the same captioner never shown "
          "alt-text)", NOT_RETRIEVED, "brand_retention.altogether", "brand_retention.no_alt", "higher",
          diagnostics=COPYING),
    Claim("fewer_hallucinations", "re-aligned captions hallucinate less than the alt-text they re-align",
          NOT_RETRIEVED, "hallucination.altogether", "hallucination.alt_text", "lower", diagnostics=ENCODER),
    Claim("diversity_vs_no_alt", "re-aligned captions are more diverse than captions written without alt-text "
          "(distinct word bigrams over the same test images)", SEED_COMMENT, "distinct2.altogether",
          "distinct2.no_alt", "higher", diagnostics=("distinct2.alt_text", "vocabulary.altogether",
                                                     "vocabulary.no_alt", "vocabulary.alt_text")),
    Claim("entities_vs_no_alt", "re-aligned captions keep more of the alt-texts' specific entities (distinct "
          "brands named anywhere in the caption set) than captions written without alt-text", SEED_COMMENT,
          "entity_survival.altogether", "entity_survival.no_alt", "higher", diagnostics=COPYING[:1]),
    Claim("alt_text_helps", "reading the alt-text brings captions closer to the re-aligned references (CIDEr-D)",
          NOT_RETRIEVED + "; ablation with/without the alt-text prompt", "cider.altogether", "cider.no_alt",
          "higher"),
    Claim("downstream_zeroshot", "a CLIP trained on alt-text mixed with 15% Altogether captions beats one on "
          "alt-text at zero-shot classification", "stated in the abstract; MetaCLIP 1.2 syn_ratio 0.15 (notes B.6)",
          "clip_zeroshot.mix15", "clip_zeroshot.alt_text", "higher"),
    Claim("ssl_encoder_cider", "a self-supervised image encoder (contrastive + distillation + MIM) gives captions "
          "closer to the re-aligned references (CIDEr-D) than the contrastive-only encoder", SSL_COMMENT,
          f"cider.{SSL}", f"cider.{CLIP_ONLY}", "higher", diagnostics=SSL_PROBES),
    Claim("ssl_encoder_brands", "a self-supervised image encoder lets the captioner keep more of the alt-text's "
          "brands on the right object than the contrastive-only encoder", SSL_COMMENT,
          f"brand_retention.{SSL}", f"brand_retention.{CLIP_ONLY}", "higher", diagnostics=SSL_PROBES + COPYING),
    Claim("ssl_encoder_hallucination", "a self-supervised image encoder lets the captioner hallucinate less than "
          "the contrastive-only encoder", SSL_COMMENT, f"hallucination.{SSL}", f"hallucination.{CLIP_ONLY}",
          "lower", diagnostics=SSL_PROBES),
)

# The report's tables, one row per captioning system (alt_text, no_alt, stage1, altogether, gold, enc_<encoder>) or
# downstream CLIP; the remaining keys (copy probes, encoder probes, gates) are laid out by their shape.
TABLES = (
    ReportTable("captions of the test images against their re-aligned references",
                ("cider", "bleu4", "object_recall", "object_precision", "colour_acc", "position_acc",
                 "hallucination", "brand_retention", "brand_mention", "brand_hallucination")),
    ReportTable("diversity of each caption set (the same test images)", ("distinct2", "vocabulary", "entity_survival")),
    ReportTable("downstream CLIPs (zero-shot on Fashion-MNIST; text-to-image R@1, held-out human-style queries)",
                ("clip_zeroshot", "clip_t2i_r1", "clip_t2i_r1_realigned")),
)
