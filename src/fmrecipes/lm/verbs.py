"""``fmrecipes lm train | eval | sample``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import yaml

from .. import config as configlib
from ..core import dist
from ..core.causal_lm import causal_lm
from ..core.checkpoint import latest_checkpoint, load_model
from ..core.fileio import atomic_write_json, ensure_dir
from ..core.gpt import GPT
from ..core.hf import context_length, load_causal_lm
from ..core.runlock import run_lock
from ..core.train import TrainResult, evaluate, train
from ..data.prepared import packed, prepare
from ..errors import FmError
from .config import LMConfig


def _build_model(cfg: LMConfig) -> tuple[nn.Module, int, int]:
    """The model to train, its vocabulary size and its sequence length."""
    if cfg.hf_model:
        model = load_causal_lm(cfg.hf_model)
        seq_len = min(cfg.model.seq_len, context_length(model) or cfg.model.seq_len)
        return model, causal_lm(model).vocab_size, seq_len
    return GPT(cfg.model), cfg.model.vocab_size, cfg.model.seq_len


def _check_same_run(run_dir: Path, cfg: LMConfig) -> None:
    """Refuse to resume a run directory that holds a different model or data config."""
    saved = run_dir / "config.yaml"
    if not saved.is_file() or latest_checkpoint(run_dir) is None:
        return
    old = yaml.safe_load(saved.read_text())
    new = configlib.to_dict(cfg)
    for section in ("model", "data", "hf_model"):
        if old.get(section) != new.get(section):
            raise FmError(f"{run_dir} holds a run with a different '{section}' config; use a new out directory "
                          "or delete it")


def train_lm(cfg: LMConfig) -> TrainResult:
    """``lm train``: one run per output directory (a lock); ``config.yaml`` is written when the run starts fresh,
    and rewritten with changed settings only once they have trained to the end, so it always describes the
    checkpoints beside it."""
    env = dist.setup(cfg.run)
    run_dir = ensure_dir(cfg.out, "output directory") if env.is_main else Path(cfg.out)
    dist.barrier(env)
    with run_lock(run_dir, env.is_main):
        _check_same_run(run_dir, cfg)
        torch.manual_seed(cfg.train.seed)  # the same initial weights on every rank and every rerun
        model, vocab, seq_len = _build_model(cfg)
        tok, train_shard, val_shard = prepare(cfg.data, vocab, run_dir / "data", cfg.hf_model, env, seq_len)
        train_ds, val_ds = packed(train_shard, val_shard, seq_len, cfg.data.sources)
        if env.is_main and not (run_dir / "config.yaml").is_file():
            configlib.dump_yaml(cfg, run_dir / "config.yaml")
        try:
            result = train(model, train_ds, val_ds, cfg.train, run_dir, env, tokens_per_example=seq_len,
                           tokenizer=tok)
        finally:
            dist.teardown(env)
        if env.is_main:
            configlib.dump_yaml(cfg, run_dir / "config.yaml")  # the settings have proven themselves
            summary = {"step": result.step, "val_loss": result.val_loss,
                       "val_ppl": math.exp(result.val_loss) if result.val_loss is not None else None,
                       "checkpoint": str(result.checkpoint)}
            atomic_write_json(run_dir / "train_summary.json", summary)
            print(json.dumps(summary))
    return result


def load_run(run_dir: str | Path) -> tuple[LMConfig, nn.Module, Path]:
    """A finished or partial run's config and its latest checkpoint's model."""
    run = Path(run_dir)
    if not (run / "config.yaml").is_file():
        raise FmError(f"{run} is not an lm run directory (no config.yaml); train one with `fmrecipes lm train`")
    cfg = configlib.load(LMConfig, run / "config.yaml")
    ckpt = latest_checkpoint(run)
    if ckpt is None:
        raise FmError(f"run directory {run} has no complete checkpoint yet")
    return cfg, load_model(ckpt), ckpt


def eval_lm(run_dir: str | Path, device: str = "auto") -> dict[str, Any]:
    cfg, model, ckpt = load_run(run_dir)
    env = dist.setup(dist.RunConfig(device=device))
    model.to(env.device)
    vocab = causal_lm(model).vocab_size
    _, train_shard, val_shard = prepare(cfg.data, vocab, Path(run_dir) / "data", cfg.hf_model)
    seq_len = min(cfg.model.seq_len, context_length(model) or cfg.model.seq_len)
    _, val_ds = packed(train_shard, val_shard, seq_len, cfg.data.sources)
    loss = evaluate(model, val_ds, cfg.train, env)
    result = {"checkpoint": str(ckpt), "val_loss": loss, "val_ppl": math.exp(loss)}
    atomic_write_json(Path(run_dir) / "eval.json", result)
    return result


def sample_lm(run_dir: str | Path, prompt: str, max_new_tokens: int = 64, temperature: float = 0.8,
              top_k: int | None = 50, seed: int = 0) -> str:
    cfg, model, _ = load_run(run_dir)
    from ..core.tokenizer import load_tokenizer

    tok = load_tokenizer(Path(run_dir) / "data" / "tokenizer")
    ids = tok(prompt, add_special_tokens=False)["input_ids"] or [tok.eos_token_id]
    idx = torch.tensor([ids])
    model.eval()
    out = causal_lm(model).sample(idx, None, max_new_tokens, temperature, top_k, None, tok.eos_token_id, seed)
    return tok.decode(out[0].tolist())
