"""The fused LM head + cross-entropy (core.linear_cross_entropy) against F.cross_entropy on full logits:
loss and gradients, with and without the final logit cap, with and without gradients, inside the GPT."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from fmrecipes.core.causal_lm import lm_loss
from fmrecipes.core.gpt import GPT, GPTConfig, softcap
from fmrecipes.core.linear_cross_entropy import LinearCrossEntropy, linear_cross_entropy


def _inputs(dtype=torch.float32, N=10, d=6, V=13):
    torch.manual_seed(0)
    h = (torch.randn(N, d, dtype=dtype) * 2).requires_grad_()
    w = (torch.randn(V, d, dtype=dtype) * 2).requires_grad_()
    return h, w, torch.randint(0, V, (N,))


@pytest.mark.parametrize("cap", [None, 3.0])
def test_loss_and_gradients_equal_cross_entropy_on_full_logits(cap):
    h, w, t = _inputs()
    t[[1, 6]] = -100  # ignored positions (prompt tokens, padding): no loss, no gradient, not in the mean
    loss = linear_cross_entropy(h, w, t, cap, rows=4)  # slices of 4, 4 and 2 rows
    (3.0 * loss).backward()  # the upstream gradient scales both
    got = (h.grad.clone(), w.grad.clone())
    h.grad = w.grad = None
    z = h @ w.t()
    ref = F.cross_entropy(z if cap is None else softcap(z, cap), t)
    (3.0 * ref).backward()
    torch.testing.assert_close(loss, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got[0], h.grad, atol=1e-5, rtol=1e-5)
    assert got[0][[1, 6]].abs().max() == 0
    torch.testing.assert_close(got[1], w.grad, atol=1e-5, rtol=1e-5)
    with torch.no_grad():  # evaluation: the loss alone, the same number
        torch.testing.assert_close(linear_cross_entropy(h, w, t, cap, rows=4), ref.detach(), atol=1e-5, rtol=1e-5)


def test_gradients_match_finite_differences_with_the_cap():
    h, w, t = _inputs(torch.float64, N=5, d=3, V=7)
    assert torch.autograd.gradcheck(lambda a, b: LinearCrossEntropy.apply(a, b, t, 2.0, 2), (h, w))


@pytest.mark.parametrize("cap", [None, 30.0])
def test_gpt_forward_with_targets_equals_the_loss_of_its_logits(cap):
    """``lm_loss`` on our GPT goes through the fused loss; its loss and every parameter's gradient (tied
    embeddings: the head's gradient joins the embedding's) equal cross-entropy on the model's logits."""
    torch.manual_seed(0)
    cfg = GPTConfig(vocab_size=50, seq_len=12, n_layer=2, n_head=2, d_model=16, final_logit_cap=cap, init_std=0.5)
    fused, plain = GPT(cfg), GPT(dataclasses.replace(cfg))
    plain.load_state_dict(fused.state_dict())
    x, y = torch.randint(0, 50, (3, 12)), torch.randint(0, 50, (3, 12))
    a = lm_loss(fused, (x, y))
    a.backward()
    b = F.cross_entropy(plain(x).reshape(-1, 50), y.reshape(-1))
    b.backward()
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    for (name, p), q in zip(fused.named_parameters(), plain.parameters()):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_bf16_autocast_stays_close_to_the_unfused_loss():
    h, w, t = _inputs(N=64, d=32, V=100)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = linear_cross_entropy(h, w, t, rows=16)
        ref = F.cross_entropy((h @ w.t()).float(), t)
    loss.backward()
    assert abs(loss.item() - ref.item()) < 0.05 * ref.item()
    assert h.grad.dtype == torch.float32 and w.grad.dtype == torch.float32 and torch.isfinite(w.grad).all()
