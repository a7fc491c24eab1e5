"""One interface to every model that plays a causal LM: teacher, reference, student, policy, reward backbone,
captioner decoder. fmrecipes' :class:`~fmrecipes.core.gpt.GPT` and any Hugging Face causal LM are used through
:func:`causal_lm`, the one place that tells them apart; no recipe asks which kind it holds.

The view keeps the module it was given (possibly wrapped in DDP/FSDP) for the calls that must go through the
wrapper (the training loss: gradient synchronisation hooks on the forward) and the bare model for the rest.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .checkpoint import unwrap
from .gpt import GPT, LayerCache
from .softcap_attention import softcap

Head = Callable[[torch.Tensor], torch.Tensor]


class CausalLM:
    """What a recipe may ask of a causal LM. ``module``: the model as given (called for the training loss);
    ``model``: the bare model underneath any DDP/FSDP wrapper."""

    def __init__(self, module: nn.Module):
        self.module, self.model = module, unwrap(module)

    @property
    def width(self) -> int:
        """Width of the hidden states (and the input embeddings)."""
        return self.input_embeddings().embedding_dim

    @property
    def vocab_size(self) -> int:
        return self.input_embeddings().num_embeddings

    def input_embeddings(self) -> nn.Embedding:
        raise NotImplementedError

    def logits(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Next-token logits (B, T, V) of token ids through ``module`` (a training loss may use them), no key/value
        cache; ``attention_mask`` True at real tokens."""
        raise NotImplementedError

    def loss(self, ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean next-token cross-entropy of ``targets`` (B, T) given ``ids`` (B, T), through ``module``."""
        raise NotImplementedError

    def hidden_and_head(self) -> tuple[Head, Head] | None:
        """(final hidden states of token ids, LM head including any final logit cap), or None where the model does
        not expose them (then only :meth:`logits` is available)."""
        raise NotImplementedError

    def hidden(self, ids: torch.Tensor) -> torch.Tensor:
        """Final (normed) hidden states (B, T, width) of token ids."""
        parts = self.hidden_and_head()
        if parts is None:
            raise TypeError(f"{type(self.model).__name__} exposes no decoder hidden states")
        return parts[0](ids)

    def embeds_logits(self, embeds: torch.Tensor, keep: torch.Tensor,
                      cache: list[LayerCache] | None = None) -> torch.Tensor:
        """Logits of input embeddings (B, T, width), left padding hidden by ``keep`` (B, T_past + T, True at real
        positions); with a ``cache`` from :meth:`new_cache`, ``embeds`` continue the cached positions."""
        raise NotImplementedError

    def new_cache(self) -> list[LayerCache] | None:
        """An empty key/value cache for :meth:`embeds_logits`, or None where decoding recomputes the sequence."""
        return None

    def sample(self, ids: torch.Tensor, mask: torch.Tensor | None, max_new_tokens: int, temperature: float,
               top_k: int | None, top_p: float | None, eos_id: int | None, seed: int) -> torch.Tensor:
        """``ids`` (B, T, left-padded where ``mask`` is False) followed by up to ``max_new_tokens`` sampled tokens,
        reproducibly for ``seed``; temperature 0 is greedy."""
        raise NotImplementedError


class _GPTLM(CausalLM):
    """fmrecipes' GPT: the loss is fused with its LM head (no full logits), decoding uses its key/value cache."""

    model: GPT

    def input_embeddings(self) -> nn.Embedding:
        return self.model.wte

    def logits(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.module(ids, pad_mask=attention_mask)

    def loss(self, ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.module(ids, targets=targets)

    def hidden_and_head(self) -> tuple[Head, Head]:
        cap, head = self.model.config.final_logit_cap, self.model.lm_head
        return self.model.hidden, (head if cap is None else lambda h: softcap(head(h), cap))

    def embeds_logits(self, embeds: torch.Tensor, keep: torch.Tensor,
                      cache: list[LayerCache] | None = None) -> torch.Tensor:
        return self.model(None, pad_mask=keep, cache=cache, embeds=embeds)

    def new_cache(self) -> list[LayerCache]:
        return [LayerCache() for _ in self.model.blocks]

    def sample(self, ids: torch.Tensor, mask: torch.Tensor | None, max_new_tokens: int, temperature: float,
               top_k: int | None, top_p: float | None, eos_id: int | None, seed: int) -> torch.Tensor:
        g = torch.Generator(device=ids.device).manual_seed(seed)
        return self.model.generate(ids, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
                                   pad_mask=mask, eos_id=eos_id, generator=g)


class _HFLM(CausalLM):
    """A Hugging Face causal LM (``forward(input_ids=..., attention_mask=...).logits``)."""

    def input_embeddings(self) -> nn.Embedding:
        return self.model.get_input_embeddings()

    def logits(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.module(input_ids=ids, attention_mask=attention_mask, use_cache=False).logits

    def loss(self, ids: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        out = self.module(ids)
        logits = out.logits if hasattr(out, "logits") else out
        return F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1))

    def hidden_and_head(self) -> tuple[Head, Head] | None:
        get_decoder, get_head = getattr(self.model, "get_decoder", None), getattr(self.model, "get_output_embeddings",
                                                                                  None)
        if not (callable(get_decoder) and callable(get_head)):
            return None
        decoder, head = get_decoder(), get_head()
        if decoder is None or decoder is self.model or not isinstance(head, nn.Linear):
            return None
        cap = getattr(getattr(self.model, "config", None), "final_logit_softcapping", None)

        def hidden(ids: torch.Tensor) -> torch.Tensor:
            return decoder(input_ids=ids, use_cache=False).last_hidden_state

        return hidden, (head if cap is None else lambda h: softcap(head(h), cap))

    def embeds_logits(self, embeds: torch.Tensor, keep: torch.Tensor,
                      cache: list[LayerCache] | None = None) -> torch.Tensor:
        positions = (keep.long().cumsum(1) - 1).clamp_min(0)
        return self.model(inputs_embeds=embeds, attention_mask=keep.long(), position_ids=positions).logits

    def sample(self, ids: torch.Tensor, mask: torch.Tensor | None, max_new_tokens: int, temperature: float,
               top_k: int | None, top_p: float | None, eos_id: int | None, seed: int) -> torch.Tensor:
        torch.manual_seed(seed)
        return self.model.generate(input_ids=ids, attention_mask=None if mask is None else mask.long(),
                                   max_new_tokens=max_new_tokens, do_sample=temperature > 0,
                                   temperature=temperature or None, top_k=top_k if temperature > 0 else None,
                                   top_p=top_p if temperature > 0 else None, pad_token_id=eos_id, eos_token_id=eos_id)


def causal_lm(module: nn.Module) -> CausalLM:
    """The :class:`CausalLM` view of ``module`` (fmrecipes' GPT or a Hugging Face causal LM, wrapped or not)."""
    return _GPTLM(module) if isinstance(unwrap(module), GPT) else _HFLM(module)


def lm_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """The core loop's default loss: mean next-token cross-entropy of ``batch = (ids, targets)``."""
    x, y = batch
    return causal_lm(model).loss(x, y)
