"""Soft-capped causal attention without the explicit path: the blockwise autograd function (CPU) and the
flex_attention score_mod (CUDA; its forward runs on a CPU too) against the explicit path of core.gpt."""

import dataclasses

import pytest
import torch

from fmrecipes.core import softcap_attention
from fmrecipes.core.gpt import CausalSelfAttention, GPTConfig
from fmrecipes.core.softcap_attention import CappedCausalAttention, capped_causal_attention

CAP = 5.0  # small, so that the cap bends logits of moderate size


def _explicit(q, k, v, cap):
    attn = CausalSelfAttention(dataclasses.replace(GPTConfig(d_model=8, n_head=2), attn_logit_cap=cap))
    return attn._explicit_attention(q, k, v, 0.0)


def _qkv(T, dtype=torch.float32, scale=4.0, D=8):
    torch.manual_seed(0)
    return [(torch.randn(2, 3, T, D, dtype=dtype) * scale).requires_grad_() for _ in range(3)]


def test_gradients_match_finite_differences_over_several_query_blocks(monkeypatch):
    monkeypatch.setattr(softcap_attention, "QUERY_BLOCK", 2)  # blocks of 2, 2 and 1 queries
    q, k, v = _qkv(5, torch.float64, scale=2.0, D=4)
    assert torch.autograd.gradcheck(lambda a, b, c: CappedCausalAttention.apply(a, b, c, CAP), (q, k, v))


def test_outputs_and_gradients_equal_the_explicit_path():
    q, k, v = _qkv(300)  # three query blocks of 128, 128 and 44
    out = capped_causal_attention(q, k, v, CAP)
    g = torch.randn_like(out)
    grads = torch.autograd.grad(out, (q, k, v), g)
    ref = _explicit(q, k, v, CAP)
    ref_grads = torch.autograd.grad(ref, (q, k, v), g)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    uncapped = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert not torch.allclose(out, uncapped, atol=1e-2)  # the cap is active at these logits


def test_bf16_autocast_follows_the_explicit_path():
    q, k, v = _qkv(200, scale=2.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = capped_causal_attention(q, k, v, CAP)
        ref = _explicit(q, k, v, CAP)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref.float(), atol=3e-2, rtol=3e-2)
    (out.float().square().sum()).backward()
    assert all(t.grad is not None and torch.isfinite(t.grad).all() for t in (q, k, v))


def test_flex_attention_forward_with_the_cap_as_score_mod():
    """The CUDA path, flex_attention compiled with a causal block mask and the cap as score_mod, runs its forward
    on a CPU (flex has no CPU backward) and gives the explicit path's outputs."""
    q, k, v = (t.detach() for t in _qkv(130))
    with torch.no_grad():
        flex = capped_causal_attention(q, k, v, CAP, use_flex=True)
        ref = _explicit(q, k, v, CAP)
    torch.testing.assert_close(flex, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("track", [False, True])
def test_attention_module_takes_the_function_unless_it_needs_the_logits(track, monkeypatch):
    calls = []
    monkeypatch.setattr("fmrecipes.core.gpt.capped_causal_attention",
                        lambda *a: calls.append(1) or capped_causal_attention(*a))
    attn = CausalSelfAttention(GPTConfig(d_model=8, n_head=2, attn_logit_cap=CAP))
    attn.track_max_logit = track
    from fmrecipes.core.gpt import rope_cache

    cos, sin = rope_cache(6, 4, 10000.0)
    attn(torch.randn(1, 6, 8), cos, sin)
    assert len(calls) == (0 if track else 1)
