"""The start policy: a ``core/gpt.py`` LM fine-tuned on the world's chats, where responses to principled prompts
follow their principles most of the time and responses to plain prompts are mediocre (room to improve)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from ..core import dist
from ..core.checkpoint import load_model
from ..core.gpt import GPT
from ..core.tokenizer import load_tokenizer
from ..core.train import train
from .chat import train_chat_tokenizer
from .config import SSOConfig
from .data import ChatData
from .iterate import save_policy
from .principles import system_prompt
from .world import AssistantWorld

MODES = ("none", "plus", "minus")


def sft_examples(world: AssistantWorld, n: int, seed: int) -> list[tuple[str, str, str]]:
    """``n`` (system, query, response) chats over the training queries, a third each with no, good and bad
    principles."""
    rng = np.random.default_rng(seed)
    queries = world.queries("train")
    out = []
    for i in range(n):
        q = queries[int(rng.integers(len(queries)))]
        mode = MODES[i % 3]
        named, response = world.sft_example(q, mode, rng)
        system = "" if mode == "none" else system_prompt([world.features[f] for f in named], mode == "plus")
        out.append((system, q.text, response))
    return out


def _render(system: str, query: str, response: str) -> str:
    head = f"<|system|>{system}" if system else ""
    return f"{head}<|user|>{query}<|assistant|>{response}"


def sft_policy(cfg: SSOConfig, world: AssistantWorld, out_dir: Path, env: dist.DistEnv | None = None) -> Path:
    """Tokenizer + SFT policy in ``out_dir/policy`` (cached; the SFT run itself resumes after a kill)."""
    final = out_dir / "policy"
    if (final / "config.json").is_file():
        return final
    examples = sft_examples(world, cfg.sft_examples, cfg.seed)
    tok_dir = out_dir / "tokenizer"
    env = env or dist.single_process()
    if not (tok_dir / "tokenizer.json").is_file() and env.is_main:  # one writer under torchrun, the others wait
        train_chat_tokenizer((_render(*e) for e in examples), cfg.vocab_size, tok_dir)
    dist.barrier(env)
    tok = load_tokenizer(tok_dir)
    torch.manual_seed(cfg.seed)  # the same initial weights on every rerun
    model = GPT(dataclasses.replace(cfg.policy, vocab_size=len(tok)))
    data = ChatData(tok, examples, cfg.policy.seq_len)
    train(model, data, None, cfg.sft_train, out_dir / "train", env)
    return save_policy(model, tok, final, env)


def load_policy(directory: str | Path, device="cpu"):
    """A policy directory (weights + tokenizer) as (model, tokenizer)."""
    return load_model(directory, device), load_tokenizer(directory)
