"""Does the captioner read a kind of word (brands, classes, colours) from its alt-text prompt? A diagnostic
of the re-alignment the paper asks for (notes B.1: keep the alt-text's specific concepts), not one of its
metrics.

For each test image whose prompt and reference caption both contain a word of the kind, the teacher-forced
probability of that word where the reference first writes it, (1) with the true prompt and (2) with the
prompt in which the word is replaced by another of its kind that neither text contains, and (3) that other
word's probability there. A captioner that copies the word loses probability on it when it is swapped out
and gives it to the swapped-in word; one that does not read the prompt for this kind scores (1) = (2).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..data.fashion_mnist import CLASSES
from ..data.scene_graph import BRANDS, COLOURS
from .data import CaptionCodec
from .evaluate import has_word, whole_word

KINDS: dict[str, tuple[str, ...]] = {"brand": BRANDS, "class": CLASSES, "colour": tuple(COLOURS)}


def word_ids(tokenizer, words: tuple[str, ...]) -> dict[str, int]:
    """The words written as one token after a space (as inside a caption); the others cannot be probed."""
    ids = {w: tokenizer(" " + w, add_special_tokens=False)["input_ids"] for w in words}
    return {w: i[0] for w, i in ids.items() if len(i) == 1}


@torch.no_grad()
def copy_probe(model: nn.Module, codec: CaptionCodec, image_emb: torch.Tensor, prompts: list[str],
               captions: list[str], words: tuple[str, ...], limit: int = 200) -> dict[str, float]:
    """``{"n", "p_true", "p_swapped", "p_swapped_in"}`` over at most ``limit`` images (see the module doc);
    an empty dict when no image qualifies."""
    ids = word_ids(codec.tokenizer, words)
    probe = CaptionCodec(codec.tokenizer, codec.prompt_len, codec.target_len)  # the run's counts stay as they are
    rows, true_prompts, swapped_prompts = [], [], []
    for i, (prompt, caption) in enumerate(zip(prompts, captions)):
        target = probe.tokenizer(caption, add_special_tokens=False)["input_ids"][: codec.target_len - 1]
        shared = [w for w in ids if has_word(prompt, w) and ids[w] in target]
        if not shared:
            continue
        word = shared[0]
        others = [w for w in ids if not has_word(prompt, w) and not has_word(caption, w)]
        if not others:
            continue
        other = others[(list(ids).index(word)) % len(others)]
        rows.append((i, target.index(ids[word]), ids[word], ids[other], caption))
        true_prompts.append(prompt)
        swapped_prompts.append(whole_word(word).sub(other, prompt))
        if len(rows) == limit:
            break
    if not rows:
        return {}
    index = torch.tensor([r[0] for r in rows])
    position = torch.tensor([r[1] for r in rows])
    word_id, other_id = torch.tensor([r[2] for r in rows]), torch.tensor([r[3] for r in rows])
    target_ids, _ = probe.targets([r[4] for r in rows])
    was_training = model.training
    model.eval()
    probs = []
    for texts in (true_prompts, swapped_prompts):
        logits = model(image_emb[index], *probe.prompts(texts), target_ids)
        probs.append(logits.float().softmax(-1)[torch.arange(len(rows)), position])
    model.train(was_training)
    return {"n": float(len(rows)), "p_true": float(probs[0][torch.arange(len(rows)), word_id].mean()),
            "p_swapped": float(probs[1][torch.arange(len(rows)), word_id].mean()),
            "p_swapped_in": float(probs[1][torch.arange(len(rows)), other_id].mean())}


def copy_probes(model: nn.Module, codec: CaptionCodec, image_emb: torch.Tensor, prompts: list[str],
                captions: list[str], name: str = "copy_probe") -> dict[str, float]:
    """``<name>.<kind>.<stat>`` for FashionScenes' brands, classes and colours."""
    return {f"{name}.{kind}.{k}": round(v, 4) for kind, words in KINDS.items()
            for k, v in copy_probe(model, codec, image_emb, prompts, captions, words).items()}
