"""Chat formatting: principles in the system message, one user turn, the assistant's response.

Any Hugging Face tokenizer with a chat template works; the policies trained here get a byte-level BPE with
role markers and a minimal template (``<|system|>…<|user|>…<|assistant|>…<|endoftext|>``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
import torch.nn.functional as F

from ..core.tokenizer import EOS, train_bpe
from ..errors import FmError

ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}"
                 "{% if m['role'] == 'assistant' %}" + EOS + "{% endif %}{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|>{% endif %}")


def train_chat_tokenizer(texts: Iterable[str], vocab_size: int, out_dir: str | Path):
    """A BPE over ``texts`` (rendered chats) with the role markers as special tokens and the chat template."""
    return train_bpe(texts, vocab_size, out_dir, special_tokens=ROLE_TOKENS, chat_template=CHAT_TEMPLATE)


def messages(system: str, query: str, response: str | None = None) -> list[dict[str, str]]:
    """x = the user turn alone (no system message when there is no principle); x+/x- add the system turn."""
    out = [{"role": "system", "content": system}] if system else []
    out.append({"role": "user", "content": query})
    if response is not None:
        out.append({"role": "assistant", "content": response})
    return out


def prompt_ids(tok, system: str, query: str) -> list[int]:
    """Token ids of the prompt up to and including the assistant marker."""
    if not getattr(tok, "chat_template", None):
        raise FmError(f"tokenizer {getattr(tok, 'name_or_path', '')!r} has no chat template; SSO puts its "
                      "principles in the system message, so the policy needs a chat model's tokenizer")
    try:
        text = tok.apply_chat_template(messages(system, query), tokenize=False, add_generation_prompt=True)
    except Exception as exc:  # a template that rejects system messages raises from inside jinja
        raise FmError(f"the chat template of {getattr(tok, 'name_or_path', '')!r} cannot render this prompt: "
                      f"{str(exc).splitlines()[0]}") from None
    return tok(text, add_special_tokens=False)["input_ids"]


def response_ids(tok, response: str) -> list[int]:
    """Token ids of a response followed by EOS (the end of the assistant turn)."""
    return tok(response, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]


def lm_rows(pairs: list[tuple[list[int], list[int]]], pad_id: int, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded next-token inputs ``x`` and targets ``y`` (B, T); targets are -100 on the prompt and the
    padding, so losses and log-probs count response tokens only. Responses are cut to fit ``max_len``."""
    seqs = []
    for p, r in pairs:
        if len(p) >= max_len:
            raise FmError(f"a prompt of {len(p)} tokens does not fit the policy's context of {max_len}")
        seqs.append((p, r[:max_len + 1 - len(p)]))
    T = max(len(p) + len(r) for p, r in seqs) - 1
    x = torch.full((len(seqs), T), pad_id, dtype=torch.long)
    y = torch.full((len(seqs), T), -100, dtype=torch.long)
    for i, (p, r) in enumerate(seqs):
        full = torch.tensor(p + r, dtype=torch.long)
        x[i, :len(full) - 1] = full[:-1]
        y[i, len(p) - 1:len(full) - 1] = full[len(p):]
    return x, y


def sequence_logps(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row sum of log pi(y_t | x_<=t) over the response tokens, and their count: s(y|c) and |y|."""
    out = model(x)
    logits = out.logits if hasattr(out, "logits") else out
    B, T, V = logits.shape
    mask = y != -100
    logp = -F.cross_entropy(logits.float().reshape(B * T, V), y.clamp_min(0).reshape(B * T),
                            reduction="none").view(B, T)
    return (logp * mask).sum(1), mask.sum(1)
