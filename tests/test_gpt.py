import math

import torch

from fmrecipes.core.gpt import GPT, GPTConfig, apply_rope, rope_cache

CFG = dict(vocab_size=50, seq_len=16, n_layer=2, n_head=2, d_model=16)


def test_shapes_and_causality():
    torch.manual_seed(0)
    model = GPT(GPTConfig(**CFG)).eval()
    x = torch.randint(0, 50, (2, 10))
    logits = model(x)
    assert logits.shape == (2, 10, 50)
    x2 = x.clone()
    x2[:, 6:] = (x2[:, 6:] + 1) % 50  # change the future
    assert torch.allclose(model(x2)[:, :6], logits[:, :6], atol=1e-6)
    assert not torch.allclose(model(x2)[:, 6:], logits[:, 6:])


def test_initial_loss_is_near_uniform():
    torch.manual_seed(0)
    model = GPT(GPTConfig(**CFG))
    x, y = torch.randint(0, 50, (4, 16)), torch.randint(0, 50, (4, 16))
    loss = torch.nn.functional.cross_entropy(model(x).reshape(-1, 50), y.reshape(-1))
    assert abs(loss.item() - math.log(50)) < 0.1


def test_tied_and_untied_embeddings():
    tied = GPT(GPTConfig(**CFG, tie_embeddings=True))
    untied = GPT(GPTConfig(**CFG, tie_embeddings=False))
    assert tied.lm_head.weight is tied.wte.weight
    assert untied.num_params() - tied.num_params() == 50 * 16


def test_rope_is_a_rotation_with_relative_dot_products():
    cos, sin = rope_cache(8, 4, 10000.0)
    q = torch.randn(1, 1, 1, 4).expand(1, 1, 8, 4)
    k = torch.randn(1, 1, 1, 4).expand(1, 1, 8, 4)
    rq, rk = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
    assert torch.allclose(rq.norm(dim=-1), q.norm(dim=-1), atol=1e-5)
    dots = (rq[0, 0, :, None, :] * rk[0, 0, None, :, :]).sum(-1)  # depends only on i - j
    assert torch.allclose(dots[3, 1], dots[6, 4], atol=1e-5) and torch.allclose(dots[2, 2], dots[7, 7], atol=1e-5)


def test_generate_greedy_is_deterministic():
    torch.manual_seed(0)
    model = GPT(GPTConfig(**CFG)).eval()
    x = torch.tensor([[1, 2, 3]])
    a, b = model.generate(x, 20, temperature=0), model.generate(x, 20, temperature=0)
    assert a.shape == (1, 23) and torch.equal(a, b)


def test_embeds_input_equals_token_input_and_continues_a_cache():
    from fmrecipes.core.gpt import LayerCache

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, seq_len=16, n_layer=2, n_head=2, d_model=16)).eval()
    idx = torch.randint(0, 50, (2, 7))
    assert torch.allclose(model(None, embeds=model.wte(idx)), model(idx), atol=1e-6)
    cache = [LayerCache() for _ in model.blocks]
    model(None, cache=cache, embeds=model.wte(idx[:, :5]))
    assert torch.allclose(model(idx[:, 5:], cache=cache), model(idx)[:, 5:], atol=1e-5)
