"""Decoder pre-training: the paper's decoder is a pretrained language model (OPT-1.3B, notes B.3) that already
copies from its context. Here the captioner's GPT is first trained as a language model on web text, then becomes
the captioner's decoder (``captioner.decoder_init``) for stages 1 and 2, which stay as the paper has them.

At this scale the web text with the captioner's vocabulary is alt-text: a document is one image's many alt-texts
joined as the inference prompt joins them (notes B.5), from scenes no other stage uses. A share of documents can
instead be a random token sequence written twice, the standard way to grow induction heads.

Two gates say whether the pre-trained decoder copies:

* ``copy``: on held-out documents, the probability of a brand where it repeats an earlier mention, with the
  earlier mentions as written (``p_true``) and swapped for a brand the document does not name (``p_swapped``);
  a decoder that copies loses the brand's probability when its earlier mentions are swapped;
* ``induction``: on random token sequences written twice, the mean probability of each token of the second copy
  (after its first token) against that of the first copy (chance).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from ..core import dist
from ..core.causal_lm import causal_lm
from ..core.checkpoint import latest_checkpoint, load_model, resolve_checkpoint
from ..core.gpt import GPT
from ..core.train import train
from ..data.scene_graph import BRANDS
from ..data.scene_pack import scene_pack
from ..data.tokens import PackedDataset, TokenShard, write_shard
from ..errors import FmError
from .config import AltogetherConfig
from .copy_probe import word_ids
from .data import inference_prompt

RUN = "decoder_lm"


def documents(cfg: AltogetherConfig, start: int, n: int) -> list[str]:
    """Scenes ``start`` .. ``start + n - 1`` of the train split, each drawn with ``alts_per_doc`` alt-texts and
    joined as the inference prompt (images without a text alt-text give no document)."""
    pack = scene_pack(replace(cfg.data, n_alt_texts=cfg.decoder_lm.alts_per_doc), "train", n, start=start)
    return [d for d in (inference_prompt(a) for a in pack.alt_texts) if d]


def first_scene(cfg: AltogetherConfig) -> int:
    """The first train scene after stage 1's and stage 2's (their own data, when given, uses no scene)."""
    return (0 if cfg.pretrain_data else cfg.n_pretrain) + (0 if cfg.finetune_data else cfg.n_finetune)


def repeated_sequences(n: int, length: int, vocab: int, eos: int, seed: int) -> torch.Tensor:
    """``n`` random token sequences (never EOS) of ``length`` tokens, each written twice: [n, 2·length]."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, vocab - 1, (n, length), generator=g)
    x = x + (x >= eos).long()  # skip EOS's id
    return torch.cat([x, x], dim=1)


def corpus(cfg: AltogetherConfig, tokenizer, seed: int) -> list[list[int]]:
    """The pre-training documents' token ids: the alt-text documents and, mixed among them by ``seed``, the
    repeated random sequences (``induction_share`` of all documents)."""
    c = cfg.decoder_lm
    docs = tokenizer(documents(cfg, first_scene(cfg), c.n_docs), add_special_tokens=False)["input_ids"]
    n_rep = round(len(docs) * c.induction_share / (1.0 - c.induction_share))
    if n_rep:
        docs += repeated_sequences(n_rep, c.induction_len, len(tokenizer), tokenizer.eos_token_id, seed).tolist()
    order = torch.randperm(len(docs), generator=torch.Generator().manual_seed(seed)).tolist()
    return [docs[i] for i in order]


@torch.no_grad()
def _next_token_probs(model: torch.nn.Module, rows: list[list[int]], positions: list[int], pad: int) -> torch.Tensor:
    """The model's next-token distributions [len(rows), V] predicting each row's token at ``positions[i]``."""
    width = max(positions)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    for i, (r, p) in enumerate(zip(rows, positions)):
        ids[i, :p] = torch.tensor(r[:p])  # right padding: a causal model's earlier positions never see it
    logits = causal_lm(model).logits(ids)
    return logits[torch.arange(len(rows)), torch.tensor(positions) - 1].float().softmax(-1)


def copy_gate(model: GPT, tokenizer, docs: list[str]) -> dict[str, float]:
    """``{"n", "p_true", "p_swapped", "p_swapped_in"}`` at the first brand of each document that repeats an
    earlier mention (see the module doc); empty when no document has one."""
    ids = word_ids(tokenizer, BRANDS)
    by_id = {v: k for k, v in ids.items()}
    true_rows, swapped_rows, positions, brand, other = [], [], [], [], []
    for doc in docs:
        row = tokenizer(doc, add_special_tokens=False)["input_ids"]
        repeat = next((j for j, t in enumerate(row) if t in by_id and t in row[:j]), None)
        absent = [v for v in ids.values() if v not in row]
        if repeat is None or not absent or repeat >= model.config.seq_len:
            continue
        b = row[repeat]
        o = absent[list(ids.values()).index(b) % len(absent)]
        true_rows.append(row)
        swapped_rows.append([o if (t == b and j < repeat) else t for j, t in enumerate(row)])
        positions.append(repeat)
        brand.append(b)
        other.append(o)
    if not positions:
        return {}
    was_training = model.training
    model.eval()
    rows = torch.arange(len(positions))
    p_true = _next_token_probs(model, true_rows, positions, tokenizer.eos_token_id)
    p_swap = _next_token_probs(model, swapped_rows, positions, tokenizer.eos_token_id)
    model.train(was_training)
    return {"n": float(len(positions)), "p_true": float(p_true[rows, brand].mean()),
            "p_swapped": float(p_swap[rows, brand].mean()), "p_swapped_in": float(p_swap[rows, other].mean())}


@torch.no_grad()
def induction_gate(model: GPT, n: int, length: int, eos: int, seed: int) -> dict[str, float]:
    """``{"p_first", "p_second"}``: the mean probability of each token of the first copy (after its first) and
    of the second copy (after its first) of ``n`` repeated random sequences."""
    lm = causal_lm(model)
    seq = repeated_sequences(n, length, lm.vocab_size, eos, seed)
    was_training = model.training
    model.eval()
    p = lm.logits(seq[:, :-1]).float().softmax(-1).gather(-1, seq[:, 1:, None])[..., 0]
    model.train(was_training)
    return {"p_first": float(p[:, : length - 1].mean()), "p_second": float(p[:, length:].mean())}


def gates(model: GPT, cfg: AltogetherConfig, tokenizer) -> dict[str, float]:
    """``decoder_lm.copy.*``, ``decoder_lm.copy_gain`` (p_true - p_swapped), ``decoder_lm.induction.*`` and
    ``decoder_lm.induction_gain`` (p_second - p_first), on documents of the scenes after the training ones."""
    c = cfg.decoder_lm
    held_out = documents(cfg, first_scene(cfg) + c.n_docs, c.n_gate)
    out = {f"decoder_lm.copy.{k}": v for k, v in copy_gate(model, tokenizer, held_out).items()}
    if "decoder_lm.copy.n" in out:
        out["decoder_lm.copy_gain"] = out["decoder_lm.copy.p_true"] - out["decoder_lm.copy.p_swapped"]
    ind = induction_gate(model, c.n_gate, min(c.induction_len, model.config.seq_len // 2),
                         tokenizer.eos_token_id, cfg.seed + 1)
    out.update({f"decoder_lm.induction.{k}": v for k, v in ind.items()})
    out["decoder_lm.induction_gain"] = ind["p_second"] - ind["p_first"]
    return {k: round(v, 4) for k, v in out.items()}


def new_decoder(cfg: AltogetherConfig, vocab: int) -> GPT:
    """The captioner's core GPT decoder for a tokenizer of ``vocab`` ids."""
    return GPT(replace(cfg.captioner.decoder, vocab_size=vocab))


def pretrain_decoder(cfg: AltogetherConfig, tokenizer, out: Path, env: dist.DistEnv) -> tuple[Path, dict[str, float]]:
    """Train the decoder as a language model in ``out/decoder_lm`` (resumable); its final checkpoint and the
    gates' numbers."""
    run_dir = out / RUN
    shard_dir = run_dir / "data" / "train"
    if env.is_main and not (shard_dir / "meta.json").is_file():
        write_shard(shard_dir, corpus(cfg, tokenizer, cfg.seed), tokenizer.eos_token_id, len(tokenizer))
    dist.barrier(env)
    data = PackedDataset(TokenShard(shard_dir), cfg.captioner.decoder.seq_len, "the decoder's alt-text documents")
    torch.manual_seed(cfg.seed)
    model = new_decoder(cfg, len(tokenizer))
    train(model, data, None, replace(cfg.decoder_lm.train, seed=cfg.seed), run_dir, env,
          tokens_per_example=cfg.captioner.decoder.seq_len)
    return latest_checkpoint(run_dir), gates(model.eval(), cfg, tokenizer)


def load_decoder(path: str | Path, cfg: AltogetherConfig, vocab: int) -> GPT:
    """The GPT of ``path`` (a checkpoint or its run directory) as the captioner's decoder: it must read every id of
    the tokenizer and hold prefix + prompt + caption."""
    decoder = load_model(resolve_checkpoint(path), expect=GPT)
    c = cfg.captioner
    need = c.prefix_len + c.prompt_len + c.target_len
    if decoder.config.vocab_size < vocab or decoder.config.seq_len < need:
        raise FmError(f"captioner.decoder_init={path}: its GPT reads {decoder.config.vocab_size} ids and "
                      f"{decoder.config.seq_len} positions; the captioner needs {vocab} ids and {need} positions")
    return decoder
