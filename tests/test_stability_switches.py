"""The stability switches of core/gpt.py against Hugging Face references and hand-checked invariants."""

import dataclasses

import pytest
import torch

from fmrecipes.core.checkpoint import load_model, save_model
from fmrecipes.core.gpt import GPT, CausalSelfAttention, GPTConfig, rope_cache, softcap
from fmrecipes.stability.variants import VARIANTS

D, H, T = 32, 2, 6
BASE = GPTConfig(vocab_size=40, seq_len=16, n_layer=2, n_head=H, d_model=D)


def _causal_mask(t):
    return torch.full((t, t), float("-inf")).triu(1)[None, None]


def _rope(t):
    cos, sin = rope_cache(t, D // H, 10000.0)
    return cos, sin


def _copy_qkvo(ours: CausalSelfAttention, hf) -> None:
    with torch.no_grad():
        ours.qkv.weight.copy_(torch.cat([hf.q_proj.weight, hf.k_proj.weight, hf.v_proj.weight]))
        ours.proj.weight.copy_(hf.o_proj.weight)


def test_softcap_values_and_gradient():
    z = torch.tensor([-200.0, -50.0, -1.0, 0.0, 1e-3, 30.0, 500.0], dtype=torch.float64, requires_grad=True)
    y = softcap(z, 50.0)
    assert torch.allclose(y, 50 * torch.tanh(z / 50))
    assert y.abs().max() < 50 and abs(y[4].item() - 1e-3) < 1e-9  # ~identity near 0, saturates at ±cap
    assert torch.autograd.gradcheck(lambda t: softcap(t, 50.0), (z,))
    y.sum().backward()
    assert torch.allclose(z.grad, 1 - torch.tanh(z / 50) ** 2)


@pytest.mark.parametrize("weight_scale", [1.0, 40.0])  # 40x: raw logits far above the cap of 50
def test_capped_attention_matches_gemma2_eager(weight_scale):
    from transformers import Gemma2Config
    from transformers.models.gemma2.modeling_gemma2 import Gemma2Attention

    torch.manual_seed(0)
    cfg = Gemma2Config(hidden_size=D, num_attention_heads=H, num_key_value_heads=H, head_dim=D // H,
                       query_pre_attn_scalar=D // H, attn_logit_softcapping=50.0, attention_bias=False,
                       num_hidden_layers=1, intermediate_size=64, vocab_size=40)
    cfg._attn_implementation = "eager"
    hf = Gemma2Attention(cfg, layer_idx=0).eval()
    with torch.no_grad():
        hf.q_proj.weight.mul_(weight_scale)
        hf.k_proj.weight.mul_(weight_scale)
    ours = CausalSelfAttention(dataclasses.replace(BASE, attn_logit_cap=50.0)).eval()
    _copy_qkvo(ours, hf)
    x = torch.randn(2, T, D)
    cos, sin = _rope(T)
    expected, _ = hf(x, position_embeddings=(cos[None], sin[None]), attention_mask=_causal_mask(T))
    assert torch.allclose(ours(x, cos, sin), expected, atol=1e-5)  # the path training takes
    ours.track_max_logit = True  # the monitored path: the same numbers, and the raw logit it records
    assert torch.allclose(ours(x, cos, sin), expected, atol=1e-5)
    if weight_scale > 1:
        assert ours.last_max_logit > 50  # the cap was active
        uncapped = CausalSelfAttention(BASE).eval()
        uncapped.load_state_dict(ours.state_dict())
        assert not torch.allclose(uncapped(x, cos, sin), expected, atol=1e-3)


def test_olmo2_qk_norm_matches_hf_olmo2_attention():
    from transformers import Olmo2Config
    from transformers.models.olmo2.modeling_olmo2 import Olmo2Attention

    torch.manual_seed(0)
    cfg = Olmo2Config(hidden_size=D, num_attention_heads=H, num_key_value_heads=H, attention_bias=False,
                      num_hidden_layers=1, intermediate_size=64, vocab_size=40, rms_norm_eps=1e-5)
    cfg._attn_implementation = "eager"
    hf = Olmo2Attention(cfg, layer_idx=0).eval()
    with torch.no_grad():
        hf.q_norm.weight.uniform_(0.5, 1.5)
        hf.k_norm.weight.uniform_(0.5, 1.5)
    ours = CausalSelfAttention(dataclasses.replace(BASE, qk_norm=True, qk_norm_style="olmo2")).eval()
    _copy_qkvo(ours, hf)
    with torch.no_grad():
        ours.q_norm.weight.copy_(hf.q_norm.weight)
        ours.k_norm.weight.copy_(hf.k_norm.weight)
    x = torch.randn(2, T, D)
    cos, sin = _rope(T)
    expected, _ = hf(x, position_embeddings=(cos[None], sin[None]), attention_mask=_causal_mask(T))
    assert torch.allclose(ours(x, cos, sin), expected, atol=1e-5)
    # Megatron-style per-head LayerNorm is a different function on the same weights.
    per_head = CausalSelfAttention(dataclasses.replace(BASE, qk_norm=True, qk_norm_style="per_head")).eval()
    per_head.qkv.load_state_dict(ours.qkv.state_dict())
    per_head.proj.load_state_dict(ours.proj.state_dict())
    assert not torch.allclose(per_head(x, cos, sin), expected, atol=1e-3)


@pytest.mark.parametrize("norm_type", ["layernorm", "rmsnorm"])
def test_per_head_qk_norm_matches_qwen3_attention_norm_before_rope(norm_type):
    """Per-head QK-norm sits after the split into heads and before RoPE, as in Qwen3's attention (which uses
    RMSNorm; for our default LayerNorm the same attention runs with our norm modules swapped in). The norm
    gains are random, so a norm moved after RoPE gives other numbers."""
    from transformers import Qwen3Config
    from transformers.models.qwen3.modeling_qwen3 import Qwen3Attention

    torch.manual_seed(0)
    cfg = Qwen3Config(hidden_size=D, num_attention_heads=H, num_key_value_heads=H, head_dim=D // H,
                      attention_bias=False, num_hidden_layers=1, intermediate_size=64, vocab_size=40,
                      rms_norm_eps=BASE.norm_eps)
    cfg._attn_implementation = "eager"
    hf = Qwen3Attention(cfg, layer_idx=0).eval()
    ours = CausalSelfAttention(dataclasses.replace(BASE, qk_norm=True, qk_norm_style="per_head",
                                                   norm_type=norm_type)).eval()
    _copy_qkvo(ours, hf)
    with torch.no_grad():
        for norm in (ours.q_norm, ours.k_norm):
            for p in norm.parameters():
                p.uniform_(0.5, 1.5)
    if norm_type == "rmsnorm":
        with torch.no_grad():
            hf.q_norm.weight.copy_(ours.q_norm.weight)
            hf.k_norm.weight.copy_(ours.k_norm.weight)
    else:
        hf.q_norm, hf.k_norm = ours.q_norm, ours.k_norm
    x = torch.randn(2, T, D)
    cos, sin = _rope(T)
    expected, _ = hf(x, position_embeddings=(cos[None], sin[None]), attention_mask=_causal_mask(T))
    assert torch.allclose(ours(x, cos, sin), expected, atol=1e-5)


def _attn(**switches):
    torch.manual_seed(0)
    return CausalSelfAttention(dataclasses.replace(BASE, **switches)).eval()


def test_qk_norm_per_head_makes_attention_invariant_to_query_key_scale():
    x, (cos, sin) = torch.randn(1, T, D), _rope(T)
    for style in ("per_head", "olmo2"):
        a = _attn(qk_norm=True, qk_norm_style=style)
        y = a(x, cos, sin)
        with torch.no_grad():
            a.qkv.weight[: 2 * D].mul_(7.0)  # scale W_q and W_k
        assert torch.allclose(a(x, cos, sin), y, atol=1e-4), style
    base = _attn()
    y = base(x, cos, sin)
    with torch.no_grad():
        base.qkv.weight[: 2 * D].mul_(7.0)
    assert not torch.allclose(base(x, cos, sin), y, atol=1e-2)


def test_per_head_qk_norm_normalises_each_head():
    a = _attn(qk_norm=True)
    seen = {}
    a.q_norm.register_forward_hook(lambda m, i, o: seen.update(q=o))
    a(torch.randn(1, T, D), *_rope(T))
    q = seen["q"]  # (B, H, T, head_dim)
    assert q.shape == (1, H, T, D // H)
    assert torch.allclose(q.mean(-1), torch.zeros(1, H, T), atol=1e-5)
    assert torch.allclose(q.var(-1, unbiased=False), torch.ones(1, H, T), atol=1e-3)


@pytest.mark.parametrize("style", ["fused", "per_tensor"])
def test_qkv_norm_replaces_the_pre_norm(style):
    cfg = dataclasses.replace(BASE, qkv_norm=True, qkv_norm_style=style)
    block = GPT(cfg).blocks[0]
    assert block.ln_1 is None  # attention pre-norm removed
    assert block.ln_2 is not None  # the MLP keeps its pre-norm
    a = _attn(qkv_norm=True, qkv_norm_style=style)
    x, (cos, sin) = torch.randn(1, T, D), _rope(T)
    # QKV's output is normalised, so the attention branch no longer depends on the input's scale.
    assert torch.allclose(a(3.0 * x, cos, sin), a(x, cos, sin), atol=1e-4)
    assert not torch.allclose(_attn()(3.0 * x, cos, sin), _attn()(x, cos, sin), atol=1e-3)


def test_fused_and_per_tensor_qkv_norm_differ():
    x, (cos, sin) = torch.randn(1, T, D), _rope(T)
    fused, per = _attn(qkv_norm=True, qkv_norm_style="fused"), _attn(qkv_norm=True, qkv_norm_style="per_tensor")
    per.qkv.load_state_dict(fused.qkv.state_dict())
    per.proj.load_state_dict(fused.proj.state_dict())
    assert not torch.allclose(fused(x, cos, sin), per(x, cos, sin), atol=1e-4)


def test_post_norms_normalise_branch_outputs_before_the_residual():
    # init_std=0.5 so the branch outputs dwarf the norm's eps (at 0.02 the Proj output variance is ~1e-5).
    model = GPT(dataclasses.replace(BASE, post_proj_norm=True, post_fc2_norm=True, init_std=0.5)).eval()
    out = {}
    model.blocks[0].attn.register_forward_hook(lambda m, i, o: out.update(attn=o))
    model.blocks[0].mlp.register_forward_hook(lambda m, i, o: out.update(mlp=o))
    model(torch.randint(0, 40, (2, T)))
    for name in ("attn", "mlp"):  # LayerNorm with unit gain and no bias: zero mean, unit variance per token
        assert torch.allclose(out[name].mean(-1), torch.zeros(2, T), atol=1e-5), name
        assert torch.allclose(out[name].var(-1, unbiased=False), torch.ones(2, T), atol=1e-3), name
    plain = GPT(dataclasses.replace(BASE, init_std=0.5)).eval()
    plain.blocks[0].attn.register_forward_hook(lambda m, i, o: out.update(attn=o))
    plain(torch.randint(0, 40, (2, T)))
    assert (out["attn"].var(-1, unbiased=False) - 1).abs().mean() > 0.5  # without the norm: not normalised


def test_attention_cap_is_identity_for_small_logits_and_hand_checked_for_large():
    small = _attn(attn_logit_cap=50.0)
    plain = _attn()
    plain.track_max_logit = True  # same explicit path, without the cap
    x, (cos, sin) = torch.randn(1, T, D), _rope(T)
    assert torch.allclose(small(x, cos, sin), plain(x, cos, sin), atol=1e-4)
    assert plain.last_max_logit.abs() < 1  # small logits: c·tanh(z/c) = z - z³/(3c²) + ...
    # Two tokens, one head of the explicit path: logits [z00; z10 z11] -> softmax of 50·tanh(z/50).
    a = _attn(attn_logit_cap=50.0)
    q = torch.tensor([[[[10.0, 0.0], [20.0, 0.0]]]])
    k = torch.tensor([[[[10.0, 0.0], [-20.0, 0.0]]]])
    v = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    y = a._explicit_attention(q, k, v, 0.0)
    z10, z11 = 20 * 10 / 2**0.5, 20 * -20 / 2**0.5
    c10, c11 = 50 * torch.tanh(torch.tensor(z10 / 50)), 50 * torch.tanh(torch.tensor(z11 / 50))
    p = torch.softmax(torch.stack([c10, c11]), 0)
    assert torch.allclose(y[0, 0, 1], p, atol=1e-6) and torch.allclose(y[0, 0, 0], v[0, 0, 0])
    # The cap comes before the mask: row 0's only visible logit saturates near -c (z00 = -141 -> -49.6), and the
    # masked key must still get no weight (capping after the mask would turn -inf into -c, close to it).
    q = torch.tensor([[[[10.0, 0.0], [1.0, 0.0]]]])
    k = torch.tensor([[[[-20.0, 0.0], [0.0, 0.0]]]])
    y = a._explicit_attention(q, k, v, 0.0)
    assert torch.equal(y[0, 0, 0], v[0, 0, 0])


def test_final_logit_cap_caps_the_lm_head():
    torch.manual_seed(0)
    capped = GPT(dataclasses.replace(BASE, final_logit_cap=30.0, init_std=2.0)).eval()
    plain = GPT(dataclasses.replace(BASE, init_std=2.0)).eval()
    plain.load_state_dict(capped.state_dict())
    idx = torch.randint(0, 40, (1, T))
    raw = plain(idx)
    assert raw.abs().max() > 30
    assert torch.allclose(capped(idx), 30 * torch.tanh(raw / 30), atol=1e-5)


def test_explicit_path_matches_fused_sdpa():
    a, x, (cos, sin) = _attn(), torch.randn(2, T, D), _rope(T)
    fused = a(x, cos, sin)
    a.track_max_logit = True  # forces the explicit path
    assert torch.allclose(a(x, cos, sin), fused, atol=1e-5)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_trains_and_round_trips(variant, tmp_path):
    torch.manual_seed(0)
    model = GPT(dataclasses.replace(BASE, **VARIANTS[variant]))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    data = (torch.randint(0, 40, (4, 1)) + torch.arange(9)) % 40
    losses = []
    for _ in range(25):
        loss = torch.nn.functional.cross_entropy(model(data[:, :-1]).reshape(-1, 40), data[:, 1:].reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.5
    save_model(model, tmp_path)
    back = load_model(tmp_path)
    assert back.config == model.config
    idx = torch.randint(0, 40, (2, 8))
    assert torch.equal(back.eval()(idx), model.eval()(idx))
