"""Zero-shot classification and image-text retrieval with any pair of image embeddings and text tower."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

TEMPLATES = ("a photo of {}.", "{}.", "an image showing {}.", "a picture of {} on a background.")


@torch.no_grad()
def encode_texts(text: nn.Module, codec: Callable, texts: list[str], batch: int = 256) -> torch.Tensor:
    was = text.training
    text.eval()
    out = torch.cat([text(*codec(texts[i:i + batch])) for i in range(0, len(texts), batch)])
    text.train(was)
    return out


def class_embeddings(text: nn.Module, codec: Callable, classes: Sequence[str]) -> torch.Tensor:
    """Per class (a noun phrase such as "a dress"), the mean of the L2-normalised prompt embeddings over
    :data:`TEMPLATES` (CLIP practice)."""
    prompts = [t.format(c) for c in classes for t in TEMPLATES]
    emb = F.normalize(encode_texts(text, codec, prompts), dim=-1).view(len(classes), len(TEMPLATES), -1)
    return F.normalize(emb.mean(1), dim=-1)


def zeroshot_accuracy(image_emb: torch.Tensor, class_emb: torch.Tensor, labels: torch.Tensor) -> float:
    pred = (F.normalize(image_emb, dim=-1) @ class_emb.T).argmax(1)
    return (pred == labels).float().mean().item()


def retrieval_r1(image_emb: torch.Tensor, text_emb: torch.Tensor) -> tuple[float, float]:
    """Image-to-text and text-to-image recall@1 of paired embeddings (pair k is image k with text k)."""
    sim = F.normalize(image_emb, dim=-1) @ F.normalize(text_emb, dim=-1).T
    target = torch.arange(len(sim))
    return (sim.argmax(1) == target).float().mean().item(), (sim.argmax(0) == target).float().mean().item()
