"""The pixel-level autoregressive baseline (sim.pixel_ar): raster order, conditioning on earlier pixels, sizing
and the compute match."""

from __future__ import annotations

import pytest
import torch

from fmrecipes.core.dist import DistEnv, RunConfig
from fmrecipes.core.gpt import GPT, GPTConfig
from fmrecipes.core.train import TrainConfig
from fmrecipes.sim.config import PixelARConfig
from fmrecipes.sim.pixel_ar import (
    compute_matched_steps,
    sample_pixel_ar,
    sized_like,
    to_images,
    to_tokens,
    train_pixel_ar,
)


def test_tokens_are_bos_then_the_quantised_pixels_in_raster_order():
    levels = 4
    images = torch.tensor([-1.0, -1 / 3, 1 / 3, 1.0]).repeat(6)[:24].reshape(1, 2, 3, 4)  # (C, H, W) = (2, 3, 4)
    images[0, 1, 2, 1] = 0.9  # rounds to the top level
    tokens = to_tokens(images, levels)
    assert tokens.shape == (1, 25) and tokens[0, 0] == levels
    c, r, col = 1, 2, 1
    assert tokens[0, 1 + c * 12 + r * 4 + col] == 3
    assert tokens[0, 1:5].tolist() == [0, 1, 2, 3]
    back = to_images(tokens, (2, 3, 4), levels)
    expected = images.clone()
    expected[0, 1, 2, 1] = 1.0
    torch.testing.assert_close(back, expected)
    assert to_images(torch.tensor([[levels, levels]]), (1, 1, 1), levels).item() == 1.0  # a sampled BOS: top level


class NextLevel(GPT):
    """A GPT whose next pixel is always the last token's level + 1 (mod levels; BOS -> 0): what it samples
    depends on every earlier draw, so a sampler that loses the prefix or the order shows. Its hidden state is the
    next level's one-hot (d_model = vocabulary) and its head the identity, scaled."""

    def __init__(self, cfg: GPTConfig):
        super().__init__(cfg)
        with torch.no_grad():
            self.lm_head.weight.copy_(50.0 * torch.eye(cfg.vocab_size))

    def hidden(self, idx, pad_mask=None, cache=None, embeds=None):
        super().hidden(idx, pad_mask, cache)  # the cache advances as the real model's does
        levels = self.config.vocab_size - 1
        nxt = torch.where(idx == levels, 0, (idx + 1) % levels)
        return torch.nn.functional.one_hot(nxt, self.config.vocab_size).float()


def test_sampling_follows_raster_order_and_conditions_on_earlier_pixels():
    levels, shape = 5, (1, 3, 4)
    model = NextLevel(GPTConfig(vocab_size=levels + 1, seq_len=13, n_layer=1, n_head=3, d_model=levels + 1,
                                tie_embeddings=False)).eval()
    images = sample_pixel_ar(model, 2, shape, levels, 1.0, torch.Generator().manual_seed(0))
    want = to_images(torch.tensor([[levels] + [k % levels for k in range(12)]]), shape, levels)
    torch.testing.assert_close(images, want.expand(2, *shape))


def test_a_trained_model_copies_what_it_has_drawn():
    """Images that are one grey level throughout: a model trained on them samples images whose pixels repeat the
    first one, which only conditioning on earlier pixels can do (their levels differ from image to image)."""
    levels, shape = 4, (1, 3, 3)
    g = torch.Generator().manual_seed(0)
    grey = torch.randint(levels, (256,), generator=g).float() / (levels - 1) * 2 - 1
    data = grey[:, None, None, None].expand(256, *shape).contiguous()
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=levels + 1, seq_len=10, n_layer=2, n_head=2, d_model=32))
    cfg = TrainConfig(steps=150, batch_size=64, micro_batch_size=64, lr=3e-3, warmup_steps=10, weight_decay=0.0,
                      log_every=50, ckpt_every=150)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        model = train_pixel_ar(model, data, cfg, levels, tmp, DistEnv(run=RunConfig(progress=False)))
    images = sample_pixel_ar(model, 64, shape, levels, 1.0, torch.Generator().manual_seed(1)).flatten(1)
    constant = (images == images[:, :1]).all(1).float().mean().item()
    assert constant > 0.9
    assert len(images[:, 0].unique()) == levels  # and the first pixel still varies


def test_the_model_is_sized_like_the_generator_and_trained_with_the_teachers_compute():
    cfg = PixelARConfig(n_layer=4, n_head=4)
    gpt = sized_like(cfg, 256, 620_000)
    assert gpt.d_model % 8 == 0 and gpt.seq_len == 257 and gpt.vocab_size == cfg.levels + 1
    params = GPT(gpt).num_params()
    for other in (gpt.d_model - 8, gpt.d_model + 8):
        from dataclasses import replace

        assert abs(params - 620_000) <= abs(GPT(replace(gpt, d_model=other)).num_params() - 620_000)
    assert sized_like(PixelARConfig(d_model=48), 64, 10**6).d_model == 48
    teacher = TrainConfig(steps=3000, batch_size=64, micro_batch_size=64)
    assert compute_matched_steps(10**6, teacher, 4 * 10**6, 32) == 1500  # 3000 x 64 x 1e6 / (32 x 4e6)
    assert compute_matched_steps(1, teacher, 10**12, 64) == 1


def test_the_pixel_ar_config_is_checked():
    from fmrecipes.errors import ConfigError

    for bad in (dict(levels=1), dict(steps=0), dict(temperature=-1.0), dict(d_model=-8)):
        with pytest.raises(ConfigError, match="pixel_ar"):
            PixelARConfig(**bad).validate()
