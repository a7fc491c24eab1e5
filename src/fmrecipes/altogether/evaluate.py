"""Caption metrics: CIDEr-D and BLEU-4 against the re-aligned captions (pycocoevalcap, the maintained COCO
implementation, pure Python for these two), and scene-graph metrics from FashionScenes' ground truth:
object recall / precision, colour and position accuracy, hallucination rate, brand retention and brand
hallucination (all micro-averaged over the test set, in percent). A brand is retained only when the caption
attaches it to the object it belongs to; every other brand-bearing mention is a brand hallucination. Brand
mention (a diagnostic) counts a kept brand whose name the caption uses at all, on any object: retention below
mention means brands are copied onto the wrong objects, mention near zero means they are not copied."""

from __future__ import annotations

import re
from typing import Any

from ..data.scene_graph import BRANDS
from ..data.scene_text import kept_brands, parse_mentions

_WORD = re.compile(r"[a-z0-9\-]+")
_POSITION = {"left": "left", "right": "right", "top": "top", "bottom": "bottom", "centre": "centre",
             "middle": "centre", "center": "centre"}


def tokens(text: str) -> str:
    """COCO-style tokenisation without Java: lower-case words, punctuation dropped."""
    return " ".join(_WORD.findall(text.lower()))


def cider_bleu(candidates: list[str], references: list[list[str]]) -> tuple[float, float]:
    """(CIDEr-D, BLEU-4) of ``candidates`` against their ``references`` (each a list), x100."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    res = {i: [tokens(c) or "empty"] for i, c in enumerate(candidates)}
    gts = {i: [tokens(r) for r in refs] for i, refs in enumerate(references)}
    cider, _ = Cider().compute_score(gts, res)
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    return 100 * float(cider), 100 * float(bleu[3])


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.;!?])\s+", text) if s.strip()]


def _is(mention: dict[str, Any], obj: dict[str, Any]) -> bool:
    """Whether a parsed mention names ``obj``: its class, and its colour when the mention states one."""
    return mention["class"] == obj["class"] and mention["colour"] in (None, obj["colour"])


def graph_counts(caption: str, graph: dict[str, Any], alt_records: list[dict[str, Any]]) -> dict[str, int]:
    """Numerators and denominators of the scene-graph metrics for one caption of one scene."""
    objects = graph["objects"]
    classes = {o["class"] for o in objects}
    colours = {(o["class"], o["colour"]) for o in objects}
    parsed = parse_mentions(caption)
    mentions = {(m["class"], m["colour"]) for m in parsed}
    kept_ids = kept_brands(alt_records)
    branded = [m for m in parsed if m["brand"]]
    owners = [o for o in objects if o["id"] in kept_ids]
    # a brand counts only on the object it belongs to: the same class, and the same colour if one is stated
    attached = [m for m in branded if any(_is(m, o) and m["brand"] == o["brand"] for o in owners)]
    retained = sum(1 for o in owners if any(_is(m, o) and m["brand"] == o["brand"] for m in branded))
    mentioned = sum(1 for o in owners if any(m["brand"] == o["brand"] for m in branded))
    c = {"objects": len(objects), "recalled": sum(1 for o in objects if o["class"] in {m[0] for m in mentions}),
         "mentions": len(mentions), "correct_class": sum(1 for m in mentions if m[0] in classes),
         "hallucinated": sum(1 for m in mentions if m[0] not in classes or (m[1] and (m[0], m[1]) not in colours)),
         "coloured": sum(1 for m in mentions if m[0] in classes and m[1]),
         "colour_ok": sum(1 for m in mentions if m[0] in classes and m[1] and (m[0], m[1]) in colours),
         "kept_brands": len(owners), "retained": retained, "brand_named": mentioned, "brands": len(branded),
         "invented": len(branded) - len(attached), "placed": 0, "place_ok": 0}
    by_class = {}
    for o in objects:
        by_class.setdefault(o["class"], []).append(o)
    for sentence in _sentences(caption):
        found = parse_mentions(sentence)
        words = [_POSITION[w] for w in _WORD.findall(sentence.lower()) if w in _POSITION]
        if len(found) == 1 and len(words) == 1 and len(by_class.get(found[0]["class"], [])) == 1:
            c["placed"] += 1
            c["place_ok"] += by_class[found[0]["class"]][0]["position"] == words[0]
    return c


def caption_metrics(captions: list[str], references: list[str], graphs: list[dict[str, Any]],
                    alt_records: list[list[dict[str, Any]]]) -> dict[str, float | None]:
    """All metrics of a system's ``captions`` of the test scenes."""
    cider, bleu = cider_bleu(captions, [[r] for r in references])
    total: dict[str, int] = {}
    for caption, graph, records in zip(captions, graphs, alt_records):
        for k, v in graph_counts(caption, graph, records).items():
            total[k] = total.get(k, 0) + v

    def pct(num: str, den: str) -> float | None:  # None where nothing was measurable (e.g. no positions stated)
        return 100.0 * total[num] / total[den] if total[den] else None

    return {"cider": cider, "bleu4": bleu, "object_recall": pct("recalled", "objects"),
            "object_precision": pct("correct_class", "mentions"), "colour_acc": pct("colour_ok", "coloured"),
            "position_acc": pct("place_ok", "placed"), "hallucination": pct("hallucinated", "mentions"),
            "brand_retention": pct("retained", "kept_brands"), "brand_mention": pct("brand_named", "kept_brands"),
            "brand_hallucination": pct("invented", "brands")}


def diversity(captions: list[str], prompts: list[str], n: int = 2) -> dict[str, float | None]:
    """How much of web data's diversity a caption set keeps (the seed's comment on the paper: captioning from
    scratch may lose it, re-aligning alt-text keeps it), over sets of equal size (every system captions the same
    test images): ``distinct<n>``, unique word n-grams over all n-grams (percent); ``vocabulary``, distinct words;
    ``entity_survival``, the share (percent) of the distinct brands the images' alt-texts (``prompts``) name that
    the set names anywhere (None when they name none)."""
    words = [tokens(c).split() for c in captions]
    grams = [tuple(w[i:i + n]) for w in words for i in range(len(w) - n + 1)]
    named = {b for p in prompts for b in BRANDS if has_word(p, b)}
    kept = {b for b in named if any(has_word(c, b) for c in captions)}
    return {f"distinct{n}": 100.0 * len(set(grams)) / max(len(grams), 1),
            "vocabulary": float(len({t for w in words for t in w})),
            "entity_survival": 100.0 * len(kept) / len(named) if named else None}


def whole_word(word: str) -> re.Pattern:
    """``word`` as a whole word ("red" not inside "shred", "shirt" not inside "t-shirt")."""
    return re.compile(rf"(?<![\w-]){re.escape(word)}(?![\w-])")


def has_word(text: str, word: str) -> bool:
    return whole_word(word).search(text) is not None
