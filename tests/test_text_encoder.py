"""core/text_encoder.py: the text tower pools over real tokens only."""

import pytest
import torch

from fmrecipes.core.text_encoder import TextConfig, TextEncoder


def test_text_tower_mean_pools_over_real_tokens_only():
    torch.manual_seed(0)
    text = TextEncoder(TextConfig(vocab_size=50, width=16, depth=2, heads=2, max_len=12)).eval()
    ids = torch.tensor([[5, 6, 7, 0, 0], [5, 6, 7, 9, 9]])
    keep = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 0, 0]], dtype=torch.bool)
    out = text(ids, keep)
    assert torch.allclose(out[0], out[1], atol=1e-6)  # whatever sits in the padding is ignored
    assert torch.allclose(out[0], text(ids[:1, :3], keep[:1, :3])[0], atol=1e-6)


def test_codec_reports_the_share_of_texts_it_cuts(tmp_path):
    from fmrecipes.core.text_encoder import text_codec

    texts = ["a red dress on the left", "a blue bag", "a small green sneaker at the top near the red dress"] * 20
    codec = text_codec(TextConfig(max_len=8), 300, texts, tmp_path / "tok")
    lengths = [len(codec.tokenizer(t)["input_ids"]) for t in texts[:3]]
    assert min(lengths) <= 8 < max(lengths)  # the case has texts on both sides of the limit
    assert codec.truncated_fraction(texts[:3]) == pytest.approx(sum(n > 8 for n in lengths) / 3)
    ids, keep = codec(texts[:3])
    assert ids.shape[1] == 8 and codec.truncated_fraction([]) == 0.0
