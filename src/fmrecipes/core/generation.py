"""Batched sampling from any causal LM: our GPT (left padding hidden by a mask) or a Hugging Face model."""

from __future__ import annotations

import torch
import torch.nn as nn

from .checkpoint import unwrap
from .gpt import GPT


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
    model = unwrap(model)
    device = next(model.parameters()).device
    ids, mask = left_pad(prompts, eos_id)
    ids, mask = ids.to(device), mask.to(device)
    was_training = model.training
    model.eval()
    if isinstance(model, GPT):
        g = torch.Generator(device=device).manual_seed(seed)
        out = model.generate(ids, max_new_tokens, temperature=temperature, top_p=top_p, pad_mask=mask,
                             eos_id=eos_id, generator=g)
    else:
        torch.manual_seed(seed)
        out = model.generate(input_ids=ids, attention_mask=mask.long(), max_new_tokens=max_new_tokens,
                             do_sample=temperature > 0, temperature=temperature or None,
                             top_p=top_p if temperature > 0 else None, pad_token_id=eos_id, eos_token_id=eos_id)
    model.train(was_training)
    result = []
    for row in out[:, ids.shape[1]:].tolist():
        result.append(row[:row.index(eos_id)] if eos_id in row else row)
    return result
