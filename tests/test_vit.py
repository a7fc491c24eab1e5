"""core/vit.py: [CLS] tokens, the mask token, other input sizes, the stems."""

import pytest
import torch
import torch.nn as nn

from fmrecipes.core.vit import ConvStem, ViT, ViTConfig
from fmrecipes.errors import ConfigError


def test_vit_dual_cls_mask_token_and_other_sizes():
    torch.manual_seed(0)
    vit = ViT(ViTConfig(image_size=16, patch_size=4, width=32, depth=2, heads=2, n_cls=2, mask_token=True))
    x = torch.rand(3, 3, 16, 16)
    out = vit(x)
    assert out.cls.shape == (3, 2, 32) and out.patches.shape == (3, 16, 32)
    assert vit(torch.rand(3, 3, 8, 8)).patches.shape == (3, 4, 32)  # a local crop: interpolated positions
    mask = torch.zeros(3, 16, dtype=torch.bool)
    mask[:, 0] = True
    y = x.clone()
    y[:, :, :4, :4] = torch.rand(3, 3, 4, 4)  # change only the masked patch's pixels
    assert torch.allclose(vit(x, mask).cls, vit(y, mask).cls, atol=1e-6)
    assert not torch.allclose(vit(x).cls, vit(y).cls, atol=1e-6)
    with pytest.raises(ValueError, match="no mask token"):
        ViT(ViTConfig(image_size=16, patch_size=4, width=32, depth=1, heads=2))(x, mask)


def test_conv_stem_is_xiao_et_al_and_keeps_the_token_grid():
    """vit.stem=conv: log2(patch) 3x3 stride-2 convolutions with batch norm and ReLU, widths doubling up to the
    model's, then a 1x1 to it (Xiao et al. 2021); the same tokens as the patchify stem."""
    cfg = ViTConfig(image_size=32, patch_size=4, width=64, depth=1, heads=2, stem="conv")
    vit = ViT(cfg)
    assert [type(m).__name__ for m in vit.patch_embed] == ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d",
                                                           "ReLU", "Conv2d"]
    convs = [m for m in vit.patch_embed if isinstance(m, nn.Conv2d)]
    assert [(c.kernel_size, c.stride, c.out_channels) for c in convs] == [((3, 3), (2, 2), 32), ((3, 3), (2, 2), 64),
                                                                          ((1, 1), (1, 1), 64)]
    assert vit(torch.rand(2, 3, 32, 32)).patches.shape == (2, 64, 64)
    assert vit(torch.rand(2, 3, 16, 16)).patches.shape == (2, 16, 64)  # a local crop
    assert [c.out_channels for c in ConvStem(8, 64) if isinstance(c, nn.Conv2d)] == [16, 32, 64, 64]


@pytest.mark.parametrize("stem,rows", [("patch", range(4, 8)), ("conv", range(1, 8))])
def test_a_stem_token_sees_its_cell_and_with_the_conv_stem_its_neighbours(stem, rows):
    """Token (1, 1) of 4 px cells: the patchify stem reads pixels 4..7 only; the conv stem's two 3x3 stride-2
    windows reach back into cell 0 (pixels 1..7) and never past its own cell."""
    torch.manual_seed(0)
    vit = ViT(ViTConfig(image_size=16, patch_size=4, width=8, depth=1, heads=2, stem=stem)).eval()
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    vit.patch_embed(x)[0, :, 1, 1].sum().backward()
    seen = x.grad[0].abs().sum(0) > 0
    expected = torch.zeros(16, dtype=torch.bool)
    expected[list(rows)] = True
    assert torch.equal(seen.any(1), expected) and torch.equal(seen.any(0), expected)


@pytest.mark.parametrize("kw,message", [({"stem": "convnext"}, "vit.stem='convnext' is unknown"),
                                        ({"stem": "conv", "patch_size": 6, "image_size": 36}, "must be a power of 2")])
def test_bad_stems_are_config_errors(kw, message):
    with pytest.raises(ConfigError, match=message):
        ViTConfig(**kw).validate()
