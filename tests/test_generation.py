"""core/gpt.py and core/generation.py: left padding, nucleus sampling, the key/value cache."""

import torch

from fmrecipes.core.gpt import GPT, GPTConfig, sample_next


def test_left_padding_is_invisible_to_the_gpt():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, seq_len=16, n_layer=2, n_head=2, d_model=16)).eval()
    row = torch.randint(0, 50, (1, 6))
    padded = torch.cat([torch.zeros(1, 3, dtype=torch.long), row], dim=1)
    mask = torch.tensor([[False] * 3 + [True] * 6])
    torch.testing.assert_close(model(padded, mask)[:, 3:], model(row), atol=1e-5, rtol=1e-5)


def test_top_p_keeps_only_the_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    g = torch.Generator().manual_seed(0)
    draws = {int(sample_next(logits, 1.0, top_p=0.8, generator=g)) for _ in range(300)}
    assert draws == {0, 1}  # 0.5 + 0.3 reaches 0.8: tokens 2 and 3 are outside
    assert int(sample_next(logits, 0.0)) == 0


def test_a_draw_is_torch_multinomials_from_the_renormalised_nucleus():
    """sample_next draws the token that torch.multinomial draws from the kept tokens' renormalised probabilities,
    with the same random numbers (the generators end in the same state), flat or peaked, with top-k or top-p."""
    from fmrecipes.core.gpt import outside_nucleus

    torch.manual_seed(0)
    for scale, top_k, top_p in ((0.05, None, 0.8), (5.0, None, 0.8), (1.0, 20, None), (1.0, 50, 0.9)):
        logits = scale * torch.randn(64, 500)
        ours, theirs = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
        for _ in range(20):
            masked = logits / 0.7
            if top_k is not None:
                masked = masked.masked_fill(masked < masked.topk(top_k).values[:, [-1]], float("-inf"))
            if top_p is not None:
                masked = masked.masked_fill(outside_nucleus(torch.softmax(masked, -1), top_p), float("-inf"))
            want = torch.multinomial(torch.softmax(masked, -1), 1, generator=theirs)[:, 0]
            assert torch.equal(sample_next(logits, 0.7, top_k, top_p, ours), want)
        assert torch.equal(ours.get_state(), theirs.get_state())


def test_the_exponential_draw_is_torchs_bit_for_bit():
    """exponential_like gives exponential_'s numbers (vectorised logs of the same double uniforms) in every
    dtype, and leaves the generator where exponential_ leaves it: the next draw is the same too."""
    from fmrecipes.core.gpt import exponential_like

    for dtype in (torch.float32, torch.bfloat16, torch.float16, torch.float64):
        ours, theirs = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
        x = torch.empty(300, 1000, dtype=dtype)
        for _ in range(3):
            q = exponential_like(x, ours)
            assert q.dtype == dtype and q.shape == x.shape
            assert torch.equal(q, torch.empty_like(x).exponential_(1, generator=theirs))
        assert torch.equal(ours.get_state(), theirs.get_state())


def test_cached_generation_equals_recomputation():
    """Greedy decoding with the key/value cache matches decoding that recomputes every prefix (left-padded)."""
    from fmrecipes.core.generation import left_pad

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=40, seq_len=24, n_layer=2, n_head=2, d_model=16)).eval()
    ids, mask = left_pad([[5, 6, 7, 8], [9, 10]], pad_id=0)
    cached = model.generate(ids, 8, temperature=0, pad_mask=mask)
    steps, m = ids, mask
    for _ in range(8):
        nxt = model(steps, m)[:, -1].argmax(-1, keepdim=True)
        steps, m = torch.cat([steps, nxt], 1), torch.cat([m, torch.ones_like(nxt, dtype=torch.bool)], 1)
    assert torch.equal(cached, steps)
    assert torch.equal(model.generate(ids[1:, 2:], 30, temperature=0)[:, :20],  # too long for the cache: window
                       model.generate(ids[1:, 2:], 18, temperature=0))


def test_preallocated_cache_holds_what_concatenation_holds_and_refuses_overflow():
    """A cache with a capacity writes positions in place; it returns the same keys/values as one that
    concatenates, and logits through it equal those through a concatenating cache."""
    import pytest

    from fmrecipes.core.gpt import LayerCache

    torch.manual_seed(0)
    grow, fixed = LayerCache(), LayerCache(capacity=7)
    for t in (4, 1, 2):
        k, v = torch.randn(2, 3, t, 5), torch.randn(2, 3, t, 5)
        a, b = grow.extend(k, v), fixed.extend(k, v)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and grow.length == fixed.length
    with pytest.raises(ValueError, match="capacity 7"):
        fixed.extend(torch.randn(2, 3, 1, 5), torch.randn(2, 3, 1, 5))
    model = GPT(GPTConfig(vocab_size=40, seq_len=24, n_layer=2, n_head=2, d_model=16)).eval()
    ids = torch.randint(1, 40, (2, 6))
    caches = {c: [LayerCache(c) for _ in model.blocks] for c in (None, 9)}
    with torch.no_grad():
        out = {c: [model(ids, None, cache), model(ids[:, :1], None, cache)] for c, cache in caches.items()}
    for a, b in zip(out[None], out[9]):
        torch.testing.assert_close(a, b)


def test_nucleus_from_the_first_candidates_equals_the_full_sort():
    """outside_nucleus ranks only the first candidates when every row's nucleus ends among them (peaked rows, as
    a trained policy's) and sorts everything otherwise (flat rows); both give the full sort's mask."""
    from fmrecipes.core.gpt import outside_nucleus

    torch.manual_seed(0)
    for scale in (8.0, 0.1):  # peaked: narrow nuclei; flat: nuclei wider than the candidates
        probs = torch.softmax(scale * torch.randn(16, 500), -1)
        top, order = probs.sort(-1, descending=True)
        full = torch.zeros_like(probs, dtype=torch.bool).scatter(-1, order, top.cumsum(-1) - top >= 0.8)
        assert torch.equal(outside_nucleus(probs, 0.8), full)
        assert (~full).sum(-1).max() < 64 if scale == 8.0 else (~full).sum(-1).min() > 64
    for head in (0.8 / 7 + 1e-3, 0.8 / 7 - 1e-3):  # 7 tokens just reach top_p, or just miss it (the skip's bound)
        probs = torch.full((2, 500), 0.0)
        probs[:, :7] = head
        tail = torch.linspace(2, 1, 493)  # distinct: no tie at the nucleus's edge
        probs[:, 7:] = (1 - 7 * head) * tail / tail.sum()
        probs[1] = probs[1].flip(0)
        top, order = probs.sort(-1, descending=True)
        full = torch.zeros_like(probs, dtype=torch.bool).scatter(-1, order, top.cumsum(-1) - top >= 0.8)
        assert torch.equal(outside_nucleus(probs, 0.8), full)
    # one batch of every kind (as a trained policy's: mostly a few tokens, now and then a wide row): each row is
    # ranked as far as its own nucleus needs, and the mask is still the full sort's
    probs = torch.softmax(torch.randn(12, 500) * torch.tensor([8.0, 8.0, 0.1, 8.0, 2.0, 8.0, 0.1, 3.0, 8.0,
                                                               8.0, 2.5, 8.0])[:, None], -1)
    top, order = probs.sort(-1, descending=True)
    full = torch.zeros_like(probs, dtype=torch.bool).scatter(-1, order, top.cumsum(-1) - top >= 0.8)
    widths = (~full).sum(-1)
    assert (widths < 8).any() and ((widths >= 8) & (widths < 64)).any() and (widths > 64).any()
    assert torch.equal(outside_nucleus(probs, 0.8), full)
