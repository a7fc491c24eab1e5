"""core/causal_lm.py: one interface to fmrecipes' GPT and a Hugging Face causal LM, the same answers from both, and
no other module asking which kind it holds."""

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from fmrecipes.core.causal_lm import causal_lm, lm_loss
from fmrecipes.core.gpt import GPT, GPTConfig
from fmrecipes.core.hf import llama_like

SRC = Path(__file__).resolve().parents[1] / "src" / "fmrecipes"
CFG = GPTConfig(vocab_size=37, seq_len=16, n_layer=2, n_head=2, d_model=24)


def _gpt():
    torch.manual_seed(0)
    return GPT(CFG).eval()


def _llama():
    torch.manual_seed(0)
    return llama_like(CFG).eval()


MODELS = pytest.mark.parametrize("make", [_gpt, _llama], ids=["gpt", "hf-llama"])


@MODELS
def test_loss_is_the_cross_entropy_of_the_logits(make):
    lm = causal_lm(make())
    x, y = torch.randint(0, 37, (3, 9)), torch.randint(0, 37, (3, 9))
    logits = lm.logits(x)
    assert logits.shape == (3, 9, 37)
    by_hand = F.cross_entropy(logits.reshape(-1, 37), y.reshape(-1))
    torch.testing.assert_close(lm.loss(x, y), by_hand, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(lm_loss(lm.module, (x, y)), by_hand, atol=1e-5, rtol=1e-5)


@MODELS
def test_hidden_states_through_the_head_are_the_logits(make):
    lm = causal_lm(make())
    x = torch.randint(0, 37, (2, 7))
    hidden, head = lm.hidden_and_head()
    assert lm.hidden(x).shape == (2, 7, lm.width) and lm.width == 24 and lm.vocab_size == 37
    torch.testing.assert_close(head(hidden(x)), lm.logits(x), atol=1e-5, rtol=1e-5)


@MODELS
def test_input_embeddings_with_left_padding_give_the_logits_of_the_ids(make):
    """The captioner's path: embeddings in, padding in front hidden by the keep mask, same logits as the ids."""
    lm = causal_lm(make())
    x = torch.randint(1, 37, (1, 6))
    padded = torch.cat([torch.zeros(1, 2, dtype=torch.long), x], 1)
    keep = torch.tensor([[False, False] + [True] * 6])
    got = lm.embeds_logits(lm.input_embeddings()(padded), keep)[:, 2:]
    torch.testing.assert_close(got, lm.logits(x), atol=1e-4, rtol=1e-4)


def test_cached_decoding_of_embeddings_equals_recomputation():
    lm = causal_lm(_gpt())
    x = torch.randint(0, 37, (2, 8))
    emb, keep = lm.input_embeddings()(x), torch.ones(2, 8, dtype=torch.bool)
    cache = lm.new_cache()
    first = lm.embeds_logits(emb[:, :5], keep[:, :5], cache)
    rest = [lm.embeds_logits(emb[:, t:t + 1], keep[:, :t + 1], cache) for t in range(5, 8)]
    torch.testing.assert_close(torch.cat([first] + rest, 1), lm.logits(x), atol=1e-5, rtol=1e-5)
    assert causal_lm(_llama()).new_cache() is None  # a Hugging Face decoder recomputes


@MODELS
def test_greedy_sampling_follows_the_argmax_and_stops_at_eos(make):
    lm = causal_lm(make())
    ids = torch.randint(1, 37, (1, 4))
    out = lm.sample(ids, None, 5, 0.0, None, None, None, seed=0)
    steps = ids
    for _ in range(5):
        steps = torch.cat([steps, lm.logits(steps)[:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(out, steps)
    eos = int(steps[0, 4])  # the first generated token
    assert lm.sample(ids, None, 5, 0.0, None, None, eos, seed=0).shape[1] == 5


def test_the_loss_goes_through_the_wrapper_it_was_given():
    """Under DDP/FSDP the loss must call the wrapper (its forward hooks synchronise gradients)."""
    model, calls = _gpt(), []

    class Wrapper(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.module = model

        def forward(self, *a, **k):
            calls.append(k)
            return self.module(*a, **k)

    lm = causal_lm(Wrapper())
    assert lm.model is model
    lm.loss(torch.randint(0, 37, (1, 5)), torch.randint(0, 37, (1, 5)))
    assert calls and "targets" in calls[0]


def test_no_module_but_the_adapter_asks_which_kind_of_lm_it_holds():
    asks = re.compile(r"isinstance\([^)]*\bGPT\)|can_generate|get_input_embeddings\(\)|hidden_states\[-1\]")
    offenders = [str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
                 if p.name != "causal_lm.py" and asks.search(p.read_text())]
    assert offenders == []
