"""Any local Hugging Face causal LM as teacher / reference / policy / student (no hub access)."""

from __future__ import annotations

from pathlib import Path

import torch.nn as nn

from ..errors import FmError


def load_causal_lm(path: str | Path, dtype=None) -> nn.Module:
    """``AutoModelForCausalLM.from_pretrained`` on a local directory, offline."""
    from transformers import AutoModelForCausalLM

    p = Path(path)
    if not (p / "config.json").is_file():
        raise FmError(f"Hugging Face model directory {p} does not exist or has no config.json")
    try:
        return AutoModelForCausalLM.from_pretrained(str(p), local_files_only=True, dtype=dtype)
    except (OSError, ValueError, KeyError) as exc:
        raise FmError(f"cannot load a causal LM from {p}: {str(exc).splitlines()[0]}") from None


def context_length(model: nn.Module) -> int | None:
    """The model's maximum sequence length, if it declares one."""
    cfg = getattr(model, "config", None)
    for name in ("seq_len", "max_position_embeddings", "n_positions"):
        value = getattr(cfg, name, None)
        if isinstance(value, int):
            return value
    return None


def llama_like(gpt_cfg) -> nn.Module:
    """A randomly initialised ``LlamaForCausalLM`` with a GPT config's width, depth, heads, vocabulary and
    length; SwiGLU's three matrices get intermediate size 8/3·d so parameters match a 4·d GELU MLP."""
    from transformers import LlamaConfig, LlamaForCausalLM

    d = gpt_cfg.d_model
    cfg = LlamaConfig(vocab_size=gpt_cfg.vocab_size, hidden_size=d, intermediate_size=round(8 * d / 3),
                      num_hidden_layers=gpt_cfg.n_layer, num_attention_heads=gpt_cfg.n_head,
                      num_key_value_heads=gpt_cfg.n_head, max_position_embeddings=gpt_cfg.seq_len,
                      tie_word_embeddings=gpt_cfg.tie_embeddings, attn_implementation="sdpa")
    return LlamaForCausalLM(cfg)
