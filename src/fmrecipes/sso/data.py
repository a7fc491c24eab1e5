"""Datasets for the core training loop: SFT chats, and SSO triples with the reference's log-probs."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn

from ..core.checkpoint import unwrap
from .chat import lm_rows, prompt_ids, response_ids, sequence_logps
from .losses import Logps

# Which prompt (system field) and response each of the six sequences uses.
SEQUENCE_FIELDS = {"x,y+": ("system", "chosen"), "x,y-": ("system", "rejected"),
                   "x+,y+": ("p_system", "chosen"), "x+,y-": ("p_system", "rejected"),
                   "x-,y0": ("n_system", "raw"), "x-,y+": ("n_system", "chosen")}


class ChatData:
    """(system, query, response) examples for SFT; ``batch`` gives ``(x, y)`` with the prompt masked out of y."""

    def __init__(self, tok, examples: list[tuple[str, str, str]], max_len: int):
        self.rows = [(prompt_ids(tok, s, q), response_ids(tok, r)) for s, q, r in examples]
        self.pad, self.max_len = tok.eos_token_id, max_len

    def __len__(self) -> int:
        return len(self.rows)

    def batch(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        return lm_rows([self.rows[int(i)] for i in indices], self.pad, self.max_len)


class TripleData:
    """SSO triples as the sequences a loss needs, with the reference model's s(y|c) computed once up front
    (the reference is the policy at the start of the iteration, so this equals a frozen copy)."""

    def __init__(self, tok, records: list[dict], sequences: tuple[str, ...], max_len: int, reference: nn.Module,
                 batch_size: int = 32):
        self.sequences, self.pad, self.max_len = sequences, tok.eos_token_id, max_len
        self.rows = [[(prompt_ids(tok, r[SEQUENCE_FIELDS[s][0]], r["instruction"]),
                       response_ids(tok, r[SEQUENCE_FIELDS[s][1]])) for s in sequences] for r in records]
        ref, lengths = [], []
        reference = unwrap(reference)
        device = next(reference.parameters()).device
        was_training = reference.training
        reference.eval()
        with torch.no_grad():
            for b in range(0, len(self.rows), batch_size):
                x, y = self._xy(range(b, min(b + batch_size, len(self.rows))))
                s, n = sequence_logps(reference, x.to(device), y.to(device))
                ref.append(s.cpu().view(-1, len(sequences)))
                lengths.append(n.cpu().view(-1, len(sequences)))
        reference.train(was_training)
        self.ref, self.lengths = torch.cat(ref), torch.cat(lengths)

    def __len__(self) -> int:
        return len(self.rows)

    def _xy(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        return lm_rows([seq for i in indices for seq in self.rows[int(i)]], self.pad, self.max_len)

    def batch(self, indices) -> tuple[torch.Tensor, ...]:
        idx = torch.as_tensor(list(map(int, indices)))
        x, y = self._xy(idx.tolist())
        return x, y, self.ref[idx], self.lengths[idx]


def triple_objective(loss: Callable, loss_cfg, sequences: tuple[str, ...]) -> Callable:
    """A core ``loss_fn(model, batch)`` computing the policy's s(y|c) for every sequence and calling ``loss``."""

    def objective(model: nn.Module, batch) -> tuple[torch.Tensor, dict]:
        x, y, ref, lengths = batch
        sums, _ = sequence_logps(model, x, y)
        sums = sums.view(ref.shape)
        col = lambda t: {s: t[:, j] for j, s in enumerate(sequences)}  # noqa: E731
        pol: Logps = col(sums)
        return loss(loss_cfg, pol, col(ref.to(sums.dtype)), col(lengths))

    return objective
