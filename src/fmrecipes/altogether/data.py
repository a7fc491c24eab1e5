"""Captioner inputs: the prompt and target of each training stage (notes B.4) and their tokenisation.

Stage 1 (pre-training on alt-text): target = the image's longest distinct alt-text, prompt = another of its
alt-texts ("" if it has one). Stage 2 (fine-tuning): target = the re-aligned caption, prompt = the image's
distinct alt-texts joined by "; " (the inference prompt). In both the prompt is blanked with probability
``p_blank``, so the model also captions without alt-text.
"""

from __future__ import annotations

from typing import Any, Literal

import torch


def distinct_alts(alts: list[str]) -> list[str]:
    """The non-empty alt-texts, stripped, without repeats, in order."""
    out: list[str] = []
    for a in (a.strip() for a in alts):
        if a and a not in out:
            out.append(a)
    return out


def inference_prompt(alts: list[str]) -> str:
    """All distinct alt-texts joined by "; " (notes B.5)."""
    return "; ".join(distinct_alts(alts))


def _pick(options: list[str], g: torch.Generator) -> str:
    return options[int(torch.randint(len(options), (1,), generator=g))]


def _stage1_target(distinct: list[str]) -> tuple[str, list[str]]:
    """Stage 1's target (the longest distinct alt-text) and the alt-texts its prompt is drawn from."""
    target = max(distinct, key=len)
    return target, [a for a in distinct if a != target]


def pretrain_example(alts: list[str], g: torch.Generator, p_blank: float) -> tuple[str, str] | None:
    """(prompt, target) for stage 1, or None for an image without alt-text."""
    d = distinct_alts(alts)
    if not d:
        return None
    target, others = _stage1_target(d)
    prompt = _pick(others, g) if others else ""
    return ("" if float(torch.rand((), generator=g)) < p_blank else prompt), target


def finetune_example(alts: list[str], caption: str, g: torch.Generator, p_blank: float) -> tuple[str, str]:
    """(prompt, target) for stage 2."""
    return ("" if float(torch.rand((), generator=g)) < p_blank else inference_prompt(alts)), caption


def stage1_brand_share(alt_texts: list[list[str]], brands: tuple[str, ...]) -> dict[str, float]:
    """How often stage 1 can copy a brand (a diagnostic): the share of stage-1 targets that name a brand
    (``stage1_targets_with_brand``), and of those, the expected share whose prompt (another alt-text, drawn
    uniformly, before blanking) names it too (``stage1_brand_in_prompt``)."""
    targets = with_brand = 0
    in_prompt = 0.0
    for alts in alt_texts:
        d = distinct_alts(alts)
        if not d:
            continue
        targets += 1
        target, others = _stage1_target(d)
        named = [b for b in brands if b in target]
        if not named:
            continue
        with_brand += 1
        in_prompt += sum(any(b in a for b in named) for a in others) / len(others) if others else 0.0
    return {"stage1_targets_with_brand": with_brand / max(targets, 1),
            "stage1_brand_in_prompt": in_prompt / max(with_brand, 1)}


class CaptionCodec:
    """Token ids for the captioner: prompts left-padded (and truncated) to ``prompt_len``, targets as caption +
    EOS right-padded to ``target_len``. Counts how many prompts and targets were truncated."""

    def __init__(self, tokenizer, prompt_len: int, target_len: int):
        self.tokenizer, self.prompt_len, self.target_len = tokenizer, prompt_len, target_len
        self.eos = tokenizer.eos_token_id
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos
        self.prompts_seen = self.prompts_truncated = 0
        self.targets_seen = self.targets_truncated = 0

    def _ids(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"]

    def prompts(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded prompt ids [B, prompt_len] and their keep mask (the first ``prompt_len`` tokens of a
        longer alt-text are kept)."""
        rows = self._ids(texts)
        self.prompts_seen += len(rows)
        self.prompts_truncated += sum(len(r) > self.prompt_len for r in rows)
        out = torch.full((len(rows), self.prompt_len), self.pad, dtype=torch.long)
        keep = torch.zeros(len(rows), self.prompt_len, dtype=torch.bool)
        for i, r in enumerate(rows):
            r = r[: self.prompt_len]
            if r:
                out[i, -len(r):] = torch.tensor(r)
                keep[i, -len(r):] = True
        return out, keep

    def targets(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded caption + EOS ids [B, target_len] and their loss mask (a longer caption keeps its
        first ``target_len - 1`` tokens and is counted)."""
        full = self._ids(texts)
        self.targets_seen += len(full)
        self.targets_truncated += sum(len(r) > self.target_len - 1 for r in full)
        rows = [r[: self.target_len - 1] + [self.eos] for r in full]
        ids = torch.full((len(rows), self.target_len), self.pad, dtype=torch.long)
        keep = torch.zeros(len(rows), self.target_len)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r)
            keep[i, :len(r)] = 1.0
        return ids, keep

    def capped(self, ids: torch.Tensor) -> list[bool]:
        """Which generated rows stopped at the length cap without an EOS (their caption is cut)."""
        return [self.eos not in row for row in ids.tolist()]

    def decode(self, ids: torch.Tensor) -> list[str]:
        """Cut each row at its first EOS; newlines removed (notes B.5)."""
        out = []
        for row in ids.tolist():
            row = row[: row.index(self.eos)] if self.eos in row else row
            out.append(" ".join(self.tokenizer.decode(row, skip_special_tokens=True).split()))
        return out


class CaptionData:
    """Trainer dataset over precomputed image embeddings; prompts and targets of ``stage`` are drawn from the
    global RNG (reseeded by the trainer every step)."""

    def __init__(self, image_emb: torch.Tensor, alt_texts: list[list[str]], codec: CaptionCodec,
                 stage: Literal["pretrain", "finetune"], p_blank: float, captions: list[str] | None = None):
        keep = range(len(alt_texts)) if stage == "finetune" else [i for i, a in enumerate(alt_texts)
                                                                   if distinct_alts(a)]
        self.index = list(keep)
        self.image_emb, self.alt_texts, self.captions = image_emb, alt_texts, captions
        self.codec, self.stage, self.p_blank = codec, stage, p_blank

    def __len__(self) -> int:
        return len(self.index)

    def batch(self, indices) -> dict[str, Any]:
        g = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,))))
        rows = [self.index[i] for i in indices.tolist()]
        if self.stage == "pretrain":
            pairs = [pretrain_example(self.alt_texts[i], g, self.p_blank) for i in rows]
        else:
            pairs = [finetune_example(self.alt_texts[i], self.captions[i], g, self.p_blank) for i in rows]
        target_ids, target_keep = self.codec.targets([t for _, t in pairs])
        prompt_ids, prompt_keep = self.codec.prompts([p for p, _ in pairs])
        return {"image_emb": self.image_emb[rows], "prompt_ids": prompt_ids, "prompt_keep": prompt_keep,
                "target_ids": target_ids, "target_keep": target_keep}
