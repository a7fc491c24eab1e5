"""A Bradley-Terry reward model trained on SSO pairs (notes Sec. 4) with optional RRM augmentation (Sec. 6).

The reward model is an LM backbone (the policy's architecture, initialised from it) with a scalar head on the
last response token. BT loss with a target probability p (1 for a preference, 0.5 for a tie):
    L = -[p·log sigmoid(r1 - r2) + (1 - p)·log sigmoid(r2 - r1)].
RRM (arXiv 2409.13156): under prompt x_i, with j = sigma1(i), k = sigma2(i), each on-prompt response beats each
off-prompt one (8 "non-contextual" pairs) and two off-prompt responses tie (6 "neutral" pairs); augmented pairs
are kept when an RM trained on the original data is not already right about them: |P(first > second) - p| >= 0.2
(the threshold of a public re-implementation, configurable).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.causal_lm import causal_lm
from ..core.checkpoint import unwrap
from .chat import prompt_ids, response_ids


@dataclass(frozen=True)
class Comparison:
    query: str
    first: str
    second: str
    target: float = 1.0  # P(first is better): 1 = preference, 0.5 = tie


class RewardModel(nn.Module):
    """r(x, y): an LM backbone's final hidden state at the last token, through a linear head."""

    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(causal_lm(backbone).width, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h = causal_lm(self.backbone).hidden(ids)
        last = h[torch.arange(ids.shape[0], device=ids.device), lengths - 1]
        return self.head(last.float()).squeeze(-1)


def bt_loss(r_first: torch.Tensor, r_second: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Bradley-Terry cross-entropy against a target probability (mean over pairs)."""
    d = r_first - r_second
    return -(target * F.logsigmoid(d) + (1 - target) * F.logsigmoid(-d)).mean()


class ComparisonData:
    """Comparisons as token sequences: ``batch`` gives (ids (2B, T), lengths (2B,), targets (B,)),
    the first responses in rows 0..B-1 and the second in B..2B-1."""

    def __init__(self, tok, comparisons: list[Comparison], max_len: int):
        self.comparisons = comparisons
        self.pad = tok.eos_token_id
        self.rows = []
        for c in comparisons:
            p = prompt_ids(tok, "", c.query)
            self.rows.append(((p + response_ids(tok, c.first))[:max_len], (p + response_ids(tok, c.second))[:max_len]))

    def __len__(self) -> int:
        return len(self.rows)

    def batch(self, indices) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        idx = [int(i) for i in indices]
        seqs = [self.rows[i][0] for i in idx] + [self.rows[i][1] for i in idx]
        ids = torch.full((len(seqs), max(map(len, seqs))), self.pad, dtype=torch.long)
        for r, s in enumerate(seqs):
            ids[r, :len(s)] = torch.tensor(s)
        lengths = torch.tensor([len(s) for s in seqs])
        return ids, lengths, torch.tensor([self.comparisons[i].target for i in idx], dtype=torch.float32)


def rm_objective(model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    ids, lengths, target = batch
    r = model(ids, lengths)
    r1, r2 = r.chunk(2)
    decided = target != 0.5
    acc = ((r1 > r2).float()[decided]).mean() if decided.any() else torch.zeros(())
    return bt_loss(r1, r2, target), {"accuracy": acc}


@torch.no_grad()
def first_wins_prob(model: nn.Module, data: ComparisonData, batch_size: int = 64) -> torch.Tensor:
    """P(first > second) = sigmoid(r1 - r2) for every comparison."""
    model = unwrap(model)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for b in range(0, len(data), batch_size):
        ids, lengths, _ = data.batch(range(b, min(b + batch_size, len(data))))
        r1, r2 = model(ids.to(device), lengths.to(device)).chunk(2)
        out.append(torch.sigmoid(r1 - r2).cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros(0)


def accuracy(model: nn.Module, data: ComparisonData) -> float:
    """Held-out preference accuracy: the fraction of pairs where r(first) > r(second)."""
    return float((first_wins_prob(model, data) > 0.5).float().mean())


def rrm_candidates(pairs: list[Comparison], rng: np.random.Generator) -> list[list[Comparison]]:
    """For each pair i, its 14 RRM comparisons under x_i (8 on-prompt > off-prompt, 6 off-prompt ties)."""
    n = len(pairs)
    if n < 2:
        return [[] for _ in pairs]
    # j = sigma1(i), k = sigma2(i); a fixed point would make an "off-prompt" response on-prompt, so it moves on
    s1, s2 = ([int(s) if s != i else (i + 1) % n for i, s in enumerate(rng.permutation(n))] for _ in range(2))
    out = []
    for i, c in enumerate(pairs):
        mine = [c.first, c.second]
        others = [pairs[s1[i]].first, pairs[s1[i]].second, pairs[s2[i]].first, pairs[s2[i]].second]
        cands = [Comparison(c.query, a, b, 1.0) for a in mine for b in others]
        cands += [Comparison(c.query, others[a], others[b], 0.5) for a in range(4) for b in range(a + 1, 4)]
        out.append(cands)
    return out


def rrm_augment(model: nn.Module, tok, pairs: list[Comparison], per_example: int, threshold: float,
                max_len: int, seed: int) -> list[Comparison]:
    """Draw ``per_example`` RRM comparisons per pair and keep those the original-data RM gets wrong by at least
    ``threshold`` in probability."""
    rng = np.random.default_rng(seed)
    drawn = []
    for cands in rrm_candidates(pairs, rng):
        drawn += [cands[j] for j in rng.choice(len(cands), size=min(per_example, len(cands)), replace=False)]
    drawn = [c for c in drawn if c.first != c.second]
    if not drawn:
        return []
    probs = first_wins_prob(model, ComparisonData(tok, drawn, max_len))
    return [c for c, p in zip(drawn, probs.tolist(), strict=True) if abs(p - c.target) >= threshold]
