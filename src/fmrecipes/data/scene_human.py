"""Held-out human-style captions of FashionScenes, for retrieval evaluation only.

The dense (synthetic) and re-aligned captions come from one template grammar, so a retrieval test that queries
with them tests models trained on synthetic captions in distribution, while alt-text models never saw its words.
These captions describe the same scene graph with a separate template family: their own openers, word order,
size words ("tiny", "big"), position phrases ("upper part", "left-hand edge"), backdrop and overlap sentences.
Only the content words that a picture and a web alt-text share stay: colour and garment class. No training text
uses these templates (a test checks that their phrases never occur in the dense captions or the alt-texts).
"""

from __future__ import annotations

import random
from typing import Any

from .scene_text import article

SIZE_WORDS = {"small": ("tiny", "little"), "large": ("big", "sizeable")}
WHERE = {"left": ("toward the left-hand edge", "over by the left-hand edge"),
         "right": ("toward the right-hand edge", "over by the right-hand edge"),
         "top": ("in the upper part", "up high in the frame"),
         "bottom": ("in the lower part", "down low in the frame"),
         "centre": ("right at the center", "at the center of the frame")}
OPENERS = ("Here we see {objects}.", "This shot shows {objects}.", "Someone photographed {objects}.")
BACKDROPS = ("The backdrop is {name}.", "Behind everything lies {name}.")
PLAIN_BACKDROPS = ("The backdrop is a flat {name} surface.", "Behind everything lies a flat {name} surface.")
OVERLAPS = ("The {front} overlaps the {behind}.", "Part of the {behind} is covered by the {front}.")


def _object(obj: dict[str, Any], rng: random.Random) -> str:
    size = rng.choice(SIZE_WORDS[obj["size"]])
    where = rng.choice(WHERE[obj["position"]])
    noun = f"{obj['colour']} {obj['class']}"
    if rng.randrange(2):
        return f"{article(size + ' ' + noun)} {where}"
    return f"{article(noun)}, {size}, {where}"


def _listing(phrases: list[str]) -> str:
    return phrases[0] if len(phrases) == 1 else "; ".join(phrases[:-1]) + "; plus " + phrases[-1]


def human_caption(graph: dict[str, Any], rng: random.Random) -> str:
    """A human-style caption of ``graph``: every object with colour, class, size and place, the overlaps and
    the backdrop, in phrasing that neither the dense captions nor the alt-texts use."""
    objects = graph["objects"]
    parts = [rng.choice(OPENERS).format(objects=_listing([_object(o, rng) for o in objects]))]
    by_id = {o["id"]: o for o in objects}
    for front, behind in graph["occlusions"]:
        names = {k: f"{by_id[i]['colour']} {by_id[i]['class']}" for k, i in (("front", front), ("behind", behind))}
        parts.append(rng.choice(OVERLAPS).format(**names))
    bg = graph["background"]
    parts.append(rng.choice(PLAIN_BACKDROPS if bg["kind"] == "plain" else BACKDROPS).format(name=bg["name"]))
    return " ".join(parts)


def human_captions(graphs: list[dict[str, Any]], key: str) -> list[str]:
    """One human-style caption per graph, each from its own seeded stream (``key`` and the position)."""
    return [human_caption(g, random.Random(f"fashionscenes-human:{key}:{i}")) for i, g in enumerate(graphs)]
