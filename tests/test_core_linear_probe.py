"""The linear probe of frozen features: it reads a linearly coded label, not one the features lack."""

import pytest
import torch

from fmrecipes.core.linear_probe import linear_probe


def test_the_linear_probe_reads_what_the_features_code_and_nothing_else():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 4, (600,), generator=g)
    y[:300] = 2  # class 2 is the majority
    centres = torch.randn(4, 16, generator=g) * 3
    x = centres[y] + torch.randn(600, 16, generator=g)
    coded = linear_probe(x[:400], y[:400], x[400:], y[400:], 4)
    assert coded["accuracy"] > 0.95
    assert coded["majority"] == pytest.approx(float((y[400:] == 2).float().mean()))
    noise = torch.randn(600, 16, generator=g)  # features that do not code the label
    blind = linear_probe(noise[:400], y[:400], noise[400:], y[400:], 4)
    assert blind["accuracy"] < coded["majority"] + 0.1 and blind["accuracy"] < 0.6
    assert linear_probe(x[:400], y[:400], x[400:], y[400:], 4) == coded  # deterministic
