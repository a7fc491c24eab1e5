"""The Altogether captioner (notes B.3): a frozen image encoder's pooled, L2-normalised embedding, a ClipCap
mapper to ``k`` prefix embeddings, and a fully trained decoder reading

    [k visual prefix] + [alt-text prompt (≤ P tokens)] + [caption + EOS (≤ T tokens)]

with the next-token loss on the caption only. Padding: the released code left-pads the prompt between the
prefix and the alt-text and leaves those pads visible to attention. Here the padding is moved in front of the
whole context (prefix + prompt) and masked, and all-padding columns are trimmed from each batch: the
decoder then sees exactly prefix + alt-text + caption, so a caption does not depend on the other rows of its
batch, and short alt-texts cost short sequences.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..core.causal_lm import causal_lm
from ..core.gpt import GPT, sample_next
from ..core.transformer import Block
from .config import CaptionerConfig


class Mapper(nn.Module):
    """ClipCap's TransformerMapper: ``Linear(E -> k·d)`` gives k tokens, concatenated with k learned constants,
    through a pre-LN transformer (ReLU, mlp ratio 2, no qkv bias); the outputs at the constants' slots are
    the prefix."""

    def __init__(self, embed_dim: int, width: int, k: int, depth: int, heads: int):
        super().__init__()
        self.k, self.width = k, width
        self.linear = nn.Linear(embed_dim, k * width)
        self.const = nn.Parameter(torch.randn(k, width))
        self.blocks = nn.ModuleList(Block(width, heads, 2.0, "relu", None, 0.0, 1e-5, qkv_bias=False)
                                    for _ in range(depth))

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.linear(emb).view(len(emb), self.k, self.width), self.const.expand(len(emb), -1, -1)], 1)
        for block in self.blocks:
            x = block(x)
        return x[:, self.k:]


class Captioner(nn.Module):
    """Mapper + decoder (core GPT, or a Hugging Face causal LM passed as ``decoder``)."""

    def __init__(self, cfg: CaptionerConfig, embed_dim: int, vocab: int, decoder: nn.Module | None = None):
        super().__init__()
        self.cfg = cfg
        if decoder is None:
            from dataclasses import replace

            decoder = GPT(replace(cfg.decoder, vocab_size=vocab))
        self.decoder = decoder
        self.mapper = Mapper(embed_dim, causal_lm(decoder).width, cfg.prefix_len, cfg.mapper_depth, cfg.mapper_heads)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return causal_lm(self.decoder).input_embeddings()(ids)

    def context(self, image_emb: torch.Tensor, prompt_ids: torch.Tensor,
                prompt_keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Prefix + prompt embeddings, left-padded as a whole and trimmed, with their keep mask [B, L]."""
        emb = torch.cat([self.mapper(image_emb), self.embed(prompt_ids)], dim=1)
        keep = torch.cat([torch.ones(len(emb), self.cfg.prefix_len, dtype=torch.bool, device=emb.device),
                          prompt_keep.bool()], dim=1)
        order = torch.argsort(keep.int(), dim=1, stable=True)  # pads first, real tokens in their order
        emb = torch.gather(emb, 1, order[..., None].expand_as(emb))
        keep = torch.gather(keep, 1, order)
        first = int((~keep).all(0).sum())  # leading columns that are padding in every row
        return emb[:, first:], keep[:, first:]

    def logits(self, embeds: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        return causal_lm(self.decoder).embeds_logits(embeds, keep)

    def forward(self, image_emb: torch.Tensor, prompt_ids: torch.Tensor, prompt_keep: torch.Tensor,
                target_ids: torch.Tensor) -> torch.Tensor:
        """Teacher-forced next-token logits [B, T, V] predicting each of ``target_ids`` [B, T] from [prefix] +
        [prompt] + the targets before it."""
        ctx, keep = self.context(image_emb, prompt_ids, prompt_keep)
        embeds = torch.cat([ctx, self.embed(target_ids[:, :-1])], dim=1)
        mask = torch.cat([keep, torch.ones_like(target_ids[:, :-1], dtype=torch.bool)], dim=1)
        return self.logits(embeds, mask)[:, ctx.shape[1] - 1:]

    @torch.no_grad()
    def generate(self, image_emb: torch.Tensor, prompt_ids: torch.Tensor, prompt_keep: torch.Tensor,
                 max_new_tokens: int, eos_id: int, temperature: float, top_p: float | None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Caption token ids [B, ≤ max_new_tokens] (EOS after each row's EOS). A decoder with a key/value cache
        (:meth:`~fmrecipes.core.causal_lm.CausalLM.new_cache`) decodes with it; others recompute the sequence."""
        ctx, keep = self.context(image_emb, prompt_ids, prompt_keep)
        done = torch.zeros(len(ctx), dtype=torch.bool, device=ctx.device)
        out: list[torch.Tensor] = []
        lm = causal_lm(self.decoder)
        cache = lm.new_cache()
        seq = ctx
        for _ in range(max_new_tokens):
            if cache is not None:
                logits = lm.embeds_logits(self.embed(out[-1][:, None]) if out else ctx, keep, cache)[:, -1]
            else:
                logits = self.logits(seq, keep)[:, -1]
            nxt = sample_next(logits.float(), temperature, None, top_p, generator)
            nxt = torch.where(done, torch.full_like(nxt, eos_id), nxt)
            out.append(nxt)
            done |= nxt == eos_id
            keep = torch.cat([keep, torch.ones_like(keep[:, :1])], dim=1)
            if cache is None:
                seq = torch.cat([seq, self.embed(nxt[:, None])], dim=1)
            if bool(done.all()):
                break
        return torch.stack(out, dim=1)
