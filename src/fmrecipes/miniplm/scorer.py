"""The scoring forward of stage 2: the same per-instance NLL as :func:`fmrecipes.miniplm.score.score_batch` (the
official scorer's numbers), computed faster on packed, full-length instances.

Where the time goes in the plain loop (``benchmarks/miniplm_score.py --profile``): matrix multiplies, then the
(B·T, V) logits' log-softmax and the element-wise work around them. This path

1. runs the model's decoder to its final hidden states, then the LM head and ``logsumexp`` on 1,024 positions at
   a time (:func:`~fmrecipes.core.linear_cross_entropy.token_nll`): the slice of logits stays in cache and the whole
   log-softmax is never written;
2. pads MLP hidden widths to a multiple of 16 (:mod:`fmrecipes.core.aligned_mlp`; exact);
3. optionally ``torch.compile``s the forward (Inductor, weights frozen as constants: fused element-wise work),
   every micro-batch at one shape, falling back to eager where no compiler works.

Models it does not recognise (neither fmrecipes' GPT nor a Hugging Face causal LM with a decoder and a linear
head), and those whose output the check below finds different, are scored by the plain forward.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn as nn

from ..core.checkpoint import unwrap
from ..core.compile import maybe_compile
from ..core.gpt import GPT
from ..core.linear_cross_entropy import token_nll
from ..core.softcap_attention import softcap
from ..errors import warn
from .losses import eos_input_mask, masked_mean

CHECK_TOLERANCE = 1e-3  # nats: a head the split misses (a logit scale, a cap) moves scores far more than this


def lm_parts(model: nn.Module) -> tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor],
                                                                                        torch.Tensor]] | None:
    """(final hidden states of token ids, LM head) of fmrecipes' GPT or a Hugging Face causal LM, with the final
    logit soft-cap where the model has one (GPT ``final_logit_cap``, Gemma-2 ``final_logit_softcapping``);
    None for other models."""
    if isinstance(model, GPT):
        cap = model.config.final_logit_cap
        return model.hidden, (model.lm_head if cap is None else lambda h: softcap(model.lm_head(h), cap))
    get_decoder, get_head = getattr(model, "get_decoder", None), getattr(model, "get_output_embeddings", None)
    if not (callable(get_decoder) and callable(get_head)):
        return None
    decoder, head = get_decoder(), get_head()
    if decoder is None or decoder is model or not isinstance(head, nn.Linear):
        return None
    cap = getattr(getattr(model, "config", None), "final_logit_softcapping", None)

    def hidden(x: torch.Tensor) -> torch.Tensor:
        return decoder(input_ids=x, use_cache=False).last_hidden_state

    return hidden, (head if cap is None else lambda h: softcap(head(h), cap))


class Scorer:
    """Mean token NLL of each packed instance (``x``, ``y`` of shape (B, T)), skipping positions whose input is
    ``eos_id``; ``__call__`` returns a float32 array. ``compile``: ``torch.compile`` the forward."""

    def __init__(self, model: nn.Module, device: torch.device, eos_id: int | None, batch_size: int,
                 compile: bool = False):
        self.model, self.device, self.eos_id, self.batch_size = unwrap(model), device, eos_id, batch_size
        parts = lm_parts(self.model)
        self.eager: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
        self.forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
        if parts is not None:
            hidden, head = parts
            self.eager = lambda x, y: token_nll(hidden(x), head, y)
            self.forward = maybe_compile(self.eager, compile, device, "the scoring forward", dynamic=False,
                                         options={"freezing": True})
        self.checked = False

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
        from .score import score_batch

        if self.forward is not None and not self.checked:
            self._check(x[:2], y[:2])
        if self.forward is None:
            return score_batch(self.model, x, y, self.device, eos_id=self.eos_id)
        n = x.shape[0]
        if n < self.batch_size:  # one shape for every micro-batch: the last one is padded with copies of its rows
            fill = torch.arange(self.batch_size) % n
            x, y = x[fill], y[fill]
        return self._mean_nll(self.forward, x, y)[:n]

    def _mean_nll(self, forward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], x: torch.Tensor,
                  y: torch.Tensor) -> np.ndarray:
        """Per-instance mean NLL of ``forward``'s per-token NLLs over the positions whose input is not EOS
        (bf16 autocast on CUDA, as :func:`~fmrecipes.miniplm.score.score_batch`)."""
        keep = eos_input_mask(x, self.eos_id)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            nll = forward(x.to(self.device), y.to(self.device))
        return masked_mean(nll.float(), None if keep is None else keep.to(self.device)).cpu().numpy()

    def _check(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """The split forward against the model's own on two instances; the plain forward from here on if they
        differ by more than :data:`CHECK_TOLERANCE`."""
        from .score import score_batch

        self.checked = True
        split = self._mean_nll(self.eager, x, y)
        own = score_batch(self.model, x, y, self.device, eos_id=self.eos_id)
        gap = float(np.abs(split - own).max())
        if not gap <= CHECK_TOLERANCE:
            warn(f"the fast scoring forward of {type(self.model).__name__} differs from its own forward by {gap:.3g} "
                 "nats; scoring with its own forward")
            self.forward = None
