"""Batched sampling from any causal LM (:func:`fmrecipes.core.causal_lm.causal_lm`), left padding hidden by a mask."""

from __future__ import annotations

import torch
import torch.nn as nn

from .causal_lm import causal_lm


def left_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T) token ids padded on the left with ``pad_id``, and the (B, T) mask of real tokens."""
    T = max(len(r) for r in rows)
    ids = torch.full((len(rows), T), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), T), dtype=torch.bool)
    for i, r in enumerate(rows):
        ids[i, T - len(r):] = torch.tensor(r, dtype=torch.long)
        mask[i, T - len(r):] = True
    return ids, mask


@torch.no_grad()
def sample_batch(model: nn.Module, prompts: list[list[int]], eos_id: int, max_new_tokens: int,
                 temperature: float, top_p: float | None, seed: int) -> list[list[int]]:
    """Sample one continuation per prompt (token ids, without the EOS that ended it), reproducibly for a seed."""
    lm = causal_lm(model)
    model = lm.model
    device = next(model.parameters()).device
    ids, mask = left_pad(prompts, eos_id)
    ids, mask = ids.to(device), mask.to(device)
    was_training = model.training
    model.eval()
    out = lm.sample(ids, mask, max_new_tokens, temperature, None, top_p, eos_id, seed)
    model.train(was_training)
    result = []
    for row in out[:, ids.shape[1]:].tolist():
        result.append(row[:row.index(eos_id)] if eos_id in row else row)
    return result
