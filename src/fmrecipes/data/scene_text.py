"""FashionScenes text: the dense (synthetic) caption, web-like alt-texts with recorded defects, and the re-aligned
caption with its three annotation rounds.

- Dense caption: the "synthetic caption" of TIPS (Sec. 3.2): every object with colour, size, position, depth
  relations and the background, from a small template grammar with varied phrasing; it never states a brand.
- Alt-text: what Altogether (Sec. 3) says web alt-text gets wrong: non-visual but true facts (brands,
  product-line names), missing objects, wrong colours or classes, hallucinated objects, shop boilerplate,
  file names, empty strings. Each phenomenon is drawn at a configured rate and recorded.
- Re-aligned caption (Altogether's round-3 target): the dense caption, keeping the brands that an alt-text
  states of the right object and nothing the alt-texts got wrong. Round 1 is the alt-texts with the wrong
  facts removed, round 2 adds the missing objects, round 3 adds attributes and relations.
"""

from __future__ import annotations

import random
import re
from typing import Any

from .fashion_mnist import CLASSES
from .scene_config import AltTextRates
from .scene_graph import BRANDS, COLOURS

POSITION_PHRASES: dict[str, tuple[str, ...]] = {
    "left": ("on the left", "at the left"), "right": ("on the right", "at the right"),
    "top": ("at the top", "near the top"), "bottom": ("at the bottom", "near the bottom"),
    "centre": ("in the centre", "in the middle"),
}
OPENERS = ("A photo of {n} on {bg}.", "An image showing {n} on {bg}.", "A picture of {n} against {bg}.")
BACKDROPS = ("a {name} background", "a {name} texture")
PLAIN_BACKDROP = "a plain {name} background"
COUNTS = ("one item", "two items", "three items", "four items", "five items")
SENTENCES = ("{NP} is {pos}.", "{Pos}, there is {np}.", "There is {np} {pos}.")
OCCLUSION = ("The {front} {front_be} in front of the {behind}.",
             "The {behind} {behind_be} partly hidden behind the {front}.")
NEAREST = "The {ref} {be} nearest to the camera."
LINES = ("Classic", "Essential", "Aurora", "Urban", "Heritage", "Studio")
PREFIXES = ("", "", "New ", "Shop ")
GENERIC = ("Product photo", "Fashion collection", "New arrivals", "Lookbook")
SEO = (" | Free Shipping", " - Buy Online", " | Best Price 2025", " - Sale", " #fashion #ootd", " | Official Store")
FILENAMES = ("IMG_{n}.jpg", "DSC0{n}.JPG", "photo-{n}.png", "{slug}_{n}.jpg")


def article(phrase: str) -> str:
    """``phrase`` with its indefinite article ("an orange dress", "a pair of trousers")."""
    if phrase.endswith("trousers"):
        return "a pair of " + phrase
    return ("an " if phrase[0].lower() in "aeiou" else "a ") + phrase


def class_phrases() -> list[str]:
    """The Fashion-MNIST class names with their article ("a dress", "an ankle boot"), for zero-shot prompts."""
    return [article(c) for c in CLASSES]


def be(obj: dict[str, Any]) -> str:
    """The verb agreeing with "the <colour> <class>" (trousers are plural)."""
    return "are" if obj["class"] == "trousers" else "is"


def describe(obj: dict[str, Any], *, size: bool = True, colour: bool = True, brand: bool = False) -> str:
    """The words naming ``obj``: ``[size] [colour] [Brand] class``."""
    words = [obj["size"]] if size else []
    words += [obj["colour"]] if colour else []
    words += [obj["brand"]] if brand else []
    return " ".join(words + [obj["class"]])


def caption_style(rng: random.Random, n_objects: int) -> dict[str, Any]:
    """The phrasing choices of one image's captions, drawn once so the dense and re-aligned captions agree."""
    return {"opener": rng.randrange(len(OPENERS)), "backdrop": rng.randrange(len(BACKDROPS)),
            "sentences": [rng.randrange(len(SENTENCES)) for _ in range(n_objects)],
            "positions": [rng.randrange(2) for _ in range(n_objects)],
            "occlusion": rng.randrange(len(OCCLUSION))}


def dense_caption(graph: dict[str, Any], style: dict[str, Any], brands: frozenset[int] = frozenset()) -> str:
    """The dense caption of ``graph``; objects whose id is in ``brands`` are named with their brand."""
    objects = graph["objects"]
    bg = graph["background"]
    backdrop = (PLAIN_BACKDROP if bg["kind"] == "plain" else BACKDROPS[style["backdrop"]]).format(name=bg["name"])
    parts = [OPENERS[style["opener"]].format(n=COUNTS[len(objects) - 1], bg=backdrop)]
    for obj, sentence, pos in zip(objects, style["sentences"], style["positions"]):
        noun = article(describe(obj, brand=obj["id"] in brands))
        where = POSITION_PHRASES[obj["position"]][pos]
        text = SENTENCES[sentence].format(NP=noun, np=noun, pos=where, Pos=where)
        parts.append(text[0].upper() + text[1:])
    by_id = {o["id"]: o for o in objects}

    def ref(i: int) -> str:
        return describe(by_id[i], size=False)

    for front, behind in graph["occlusions"]:
        parts.append(OCCLUSION[style["occlusion"]].format(front=ref(front), behind=ref(behind),
                                                          front_be=be(by_id[front]), behind_be=be(by_id[behind])))
    nearest = visibly_nearest(graph)
    if nearest is not None:
        parts.append(NEAREST.format(ref=ref(nearest["id"]), be=be(nearest)))
    return " ".join(parts)


def visibly_nearest(graph: dict[str, Any]) -> dict[str, Any] | None:
    """The object the picture shows to be nearest, when no occlusion sentence already orders the objects: the
    only large one among small ones (depth follows size, and size is what the picture shows). Two large items,
    or all small ones, leave it undecided: ``None``."""
    objects = graph["objects"]
    large = [o for o in objects if o["size"] == "large"]
    if len(objects) > 1 and not graph["occlusions"] and len(large) == 1:
        return large[0]
    return None


def _other(rng: random.Random, choices: list[str], exclude: set[str]) -> str:
    pool = [c for c in choices if c not in exclude]
    return rng.choice(pool)


def _mention(rng: random.Random, name: str, colour: str | None, brand: str | None) -> str:
    """One alt-text mention in a web style: "Nordvik red dress", "red dress by Nordvik", "Nordvik Aurora dress"."""
    described = f"{colour} {name}" if colour else name
    if brand is None:
        return described
    form = rng.randrange(3)
    if form == 0:
        return f"{brand} {described}"
    if form == 1:
        return f"{described} by {brand}"
    return f"{brand} {rng.choice(LINES)} {described}"


def alt_text(rng: random.Random, graph: dict[str, Any], rates: AltTextRates,
             colours: list[str]) -> tuple[str, dict[str, Any]]:
    """One web alt-text of ``graph`` and the record of what it states and gets wrong."""
    record: dict[str, Any] = {"kind": "text", "mentioned": [], "missing": [], "colour_stated": [],
                              "wrong_colour": [], "wrong_class": [], "brand": [], "extra": [], "seo": False}
    r = rng.random()
    if r < rates.empty:
        return "", {**record, "kind": "empty"}
    if r < rates.empty + rates.filename:
        slug = rng.choice(graph["objects"])["class"].replace(" ", "-")
        name = rng.choice(FILENAMES).format(n=rng.randrange(1000, 10000), slug=slug)
        return name, {**record, "kind": "filename"}
    in_scene = {o["class"] for o in graph["objects"]}
    mentions = []
    for obj in graph["objects"]:
        if rng.random() < rates.missing:
            record["missing"].append(obj["id"])
            continue
        record["mentioned"].append(obj["id"])
        name = obj["class"]
        if rng.random() < rates.wrong_class:
            name = _other(rng, list(CLASSES), in_scene)
            record["wrong_class"].append(obj["id"])
        colour = None
        if rng.random() < rates.colour:
            record["colour_stated"].append(obj["id"])
            colour = obj["colour"]
            if rng.random() < rates.wrong_colour:
                colour = _other(rng, colours, {obj["colour"]})
                record["wrong_colour"].append(obj["id"])
        brand = None
        if rng.random() < rates.brand:
            brand = obj["brand"]
            record["brand"].append(obj["id"])
        mentions.append(_mention(rng, name, colour, brand))
    if rng.random() < rates.extra:
        extra = {"class": _other(rng, list(CLASSES), in_scene), "colour": rng.choice(colours)}
        record["extra"].append(extra)
        mentions.insert(rng.randrange(len(mentions) + 1), f"{extra['colour']} {extra['class']}")
    joiner = rng.choice((" and ", ", ", " & ", " with "))
    body = joiner.join(mentions) if mentions else rng.choice(GENERIC)
    text = rng.choice(PREFIXES) + body
    if rng.random() < rates.seo:
        text += rng.choice(SEO)
        record["seo"] = True
    return text, record


def kept_brands(records: list[dict[str, Any]]) -> frozenset[int]:
    """Objects whose brand some alt-text states of the right object (a brand on a wrong class is dropped)."""
    return frozenset(i for r in records for i in r["brand"] if i not in r["wrong_class"])


def _listing(phrases: list[str]) -> str:
    if not phrases:
        return ""
    text = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
    return text[0].upper() + text[1:] + "."


def realigned_rounds(graph: dict[str, Any], records: list[dict[str, Any]], style: dict[str, Any]) -> list[str]:
    """Altogether's three annotation rounds for ``graph`` given its alt-texts' ``records``.

    Round 1: what the alt-texts state correctly (objects named with the right class, colours stated right,
    brands); round 2: plus the objects no alt-text names; round 3: the dense caption with the kept brands.
    """
    brands = kept_brands(records)
    named = {i for r in records for i in r["mentioned"] if i not in r["wrong_class"]}
    coloured = {i for r in records for i in r["colour_stated"] if i not in r["wrong_colour"]}

    def phrase(obj: dict[str, Any]) -> str:
        return article(describe(obj, size=False, colour=obj["id"] in coloured, brand=obj["id"] in brands))

    round1 = _listing([phrase(o) for o in graph["objects"] if o["id"] in named])
    round2 = _listing([phrase(o) for o in graph["objects"]])
    return [round1, round2, dense_caption(graph, style, brands)]


_CLASS_RE = "|".join(re.escape(c) for c in sorted(CLASSES, key=len, reverse=True))
_COLOUR_RE = "|".join(COLOURS)
_BRAND_RE = "|".join(b.lower() for b in BRANDS)
_LINE_RE = "|".join(w.lower() for w in LINES)
_MENTION = re.compile(
    rf"(?:\b(?P<brand1>{_BRAND_RE})\s+)?(?:(?:{_LINE_RE})\s+)?(?:\b(?P<colour>{_COLOUR_RE})\s+)?"
    rf"(?:\b(?P<brand2>{_BRAND_RE})\s+)?(?<![\w-])(?P<cls>{_CLASS_RE})\b(?:\s+by\s+(?P<brand3>{_BRAND_RE})\b)?")


def parse_mentions(text: str) -> list[dict[str, str | None]]:
    """Every object mention in ``text``: ``{"class", "colour" (or None), "brand" (or None)}``, in order.

    It reads this module's grammar (captions and alt-texts alike), case-insensitively; brands come back
    capitalised as in :data:`BRANDS`.
    """
    out = []
    for m in _MENTION.finditer(text.lower()):
        brand = m["brand1"] or m["brand2"] or m["brand3"]
        out.append({"class": m["cls"], "colour": m["colour"], "brand": brand.capitalize() if brand else None})
    return out


_SIDES = re.compile(r"\b(left|right|Left|Right|LEFT|RIGHT)\b")
_SWAP = {"left": "right", "right": "left", "Left": "Right", "Right": "Left", "LEFT": "RIGHT", "RIGHT": "LEFT"}


def flip_text(text: str) -> str:
    """Swap the words left and right (for a horizontally flipped image)."""
    return _SIDES.sub(lambda m: _SWAP[m[1]], text)
