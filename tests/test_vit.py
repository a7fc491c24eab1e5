"""core/vit.py: [CLS] tokens, the mask token, other input sizes."""

import pytest
import torch

from fmrecipes.core.vit import ViT, ViTConfig


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
