"""The fast scoring forward (miniplm.scorer), exact MLP padding (core.aligned_mlp) and the compile fallback
(core.compile): the same numbers as the plain forward, on fmrecipes' GPT and Hugging Face Llama."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from fmrecipes.core import compile as compile_mod
from fmrecipes.core.aligned_mlp import aligned_mlps
from fmrecipes.core.compile import maybe_compile
from fmrecipes.core.dist import DistEnv, RunConfig
from fmrecipes.core.gpt import GPT, GPTConfig
from fmrecipes.core.hf import llama_like
from fmrecipes.core.linear_cross_entropy import token_nll
from fmrecipes.data.tokens import PackedDataset, TokenShard, write_shard
from fmrecipes.miniplm.losses import instance_nll
from fmrecipes.miniplm.score import AUTO_COMPILE_INSTANCES, Scorer, compiles, score, score_batch

CPU = torch.device("cpu")
EOS = 0


def _llama(d=24, layers=2):
    torch.manual_seed(0)
    return llama_like(GPTConfig(vocab_size=97, seq_len=16, n_layer=layers, n_head=2, d_model=d)).eval()  # 8d/3 = 64


def _gpt(**kw):
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=97, seq_len=16, n_layer=2, n_head=2, d_model=24, mlp_ratio=2.5, **kw)).eval()


@pytest.fixture()
def data(tmp_path):
    rng = np.random.default_rng(0)
    docs = [rng.integers(1, 97, rng.integers(3, 30)).tolist() for _ in range(40)]
    write_shard(tmp_path / "shard", docs, EOS, 97)
    return PackedDataset(TokenShard(tmp_path / "shard"), 16)


def test_chunked_token_nll_equals_cross_entropy():
    torch.manual_seed(0)
    hidden, head, y = torch.randn(3, 5, 8), nn.Linear(8, 11, bias=False), torch.randint(0, 11, (3, 5))
    chunked = token_nll(hidden, head, y, rows=4)  # slices that cut across instances
    by_hand = -torch.log_softmax(head(hidden), -1).gather(2, y[..., None])[..., 0]
    torch.testing.assert_close(chunked, by_hand, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("make", [lambda: _llama(d=20), lambda: _gpt(), lambda: _gpt(final_logit_cap=3.0)],
                         ids=["hf-llama-53-wide-mlp", "gpt-60-wide-mlp", "gpt-final-cap"])
def test_scorer_equals_the_plain_forward_with_eos_skipped(make, data):
    """Scores of the split forward (padded MLPs, chunked head, the last micro-batch padded) equal the model's own
    forward with EOS inputs skipped; the padding is undone afterwards."""
    model = make()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, y = data.batch(np.arange(7))
    assert (x == EOS).any()
    plain = score_batch(model, x, y, CPU, eos_id=EOS)
    with aligned_mlps(model) as padded:
        assert padded == 2  # both blocks' MLP widths (53 or 60) are not multiples of 16
        fast = Scorer(model, CPU, EOS, batch_size=4)
        assert fast.forward is not None
        got = np.concatenate([fast(x[:4], y[:4]), fast(x[4:], y[4:])])
        assert fast.forward is not None  # the split forward passed its check and scored (no fallback)
    np.testing.assert_allclose(got, plain, rtol=1e-5, atol=1e-6)
    assert model.state_dict().keys() == before.keys()
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert not np.allclose(plain, score_batch(model, x, y, CPU), atol=1e-4)  # EOS skipping matters here


def test_padded_mlp_computes_the_same_function():
    model, x = _llama(d=20), torch.randint(1, 97, (2, 16))
    with torch.no_grad():
        ref = model(input_ids=x).logits
        with aligned_mlps(model):
            assert model.model.layers[0].mlp.up_proj.out_features == 64
            padded = model(input_ids=x).logits
    assert model.model.layers[0].mlp.up_proj.out_features == 53
    torch.testing.assert_close(padded, ref, atol=1e-5, rtol=1e-5)


class ScaledLlama(nn.Module):
    """A causal LM whose logits are scaled after its head (like Cohere's logit_scale): the split forward misses it."""

    def __init__(self):
        super().__init__()
        self.inner = _llama()
        self.config = self.inner.config

    def can_generate(self):
        return True

    def get_decoder(self):
        return self.inner.get_decoder()

    def get_output_embeddings(self):
        return self.inner.get_output_embeddings()

    def forward(self, input_ids, attention_mask=None, use_cache=False):
        out = self.inner(input_ids=input_ids, attention_mask=attention_mask, use_cache=use_cache)
        out.logits = out.logits * 0.5
        return out


def test_scorer_falls_back_to_the_plain_forward_when_the_split_differs(data, capsys):
    model = ScaledLlama().eval()
    x, y = data.batch(np.arange(4))
    scorer = Scorer(model, CPU, EOS, batch_size=4)
    got = scorer(x, y)
    assert scorer.forward is None and "differs from its own forward" in capsys.readouterr().err
    np.testing.assert_allclose(got, score_batch(model, x, y, CPU, eos_id=EOS), rtol=1e-6)


def test_compiled_scoring_equals_eager_scoring(tmp_path, data, monkeypatch):
    """``run.compile=true``: the Inductor-compiled scoring forward (a C++ compiler is on this machine) gives the
    eager scores; auto compiles only large pools."""
    model, idx = _llama(), np.arange(10)
    eager = score(model, data, idx, tmp_path / "e", "h", "t", batch_size=4, chunk=10,
                  env=DistEnv(run=RunConfig(progress=False, compile=False)), eos_id=EOS)
    compiled = score(model, data, idx, tmp_path / "c", "h", "t", batch_size=4, chunk=10,
                     env=DistEnv(run=RunConfig(progress=False, compile=True)), eos_id=EOS)
    np.testing.assert_allclose(compiled, eager, rtol=1e-5, atol=1e-6)
    manual = instance_nll(model(input_ids=data.batch(idx)[0]).logits, data.batch(idx)[1],
                          data.batch(idx)[0] != EOS).detach().numpy()
    np.testing.assert_allclose(compiled, manual, rtol=1e-5, atol=1e-6)
    auto = DistEnv(run=RunConfig(compile="auto"))
    assert compiles(auto, AUTO_COMPILE_INSTANCES) and not compiles(auto, AUTO_COMPILE_INSTANCES - 1)
    monkeypatch.setattr("fmrecipes.miniplm.score.compiler_available", lambda device: False)
    on, off = DistEnv(run=RunConfig(compile=True)), DistEnv(run=RunConfig(compile=False))
    assert not compiles(auto, 10**9) and compiles(on, 1)  # auto never asks for what is not here
    assert not compiles(off, 10**9) and compiles(on, 1)


def test_compile_falls_back_to_eager_with_one_warning(monkeypatch, capsys):
    def double(t):
        return 2 * t

    monkeypatch.setattr(compile_mod, "compiler_available", lambda device: False)
    assert maybe_compile(double, True, CPU, "double") is double
    assert "no compiler" in capsys.readouterr().err

    def broken_compile(fn, **options):
        def fail(*args):
            raise RuntimeError("InductorError: C++ compile error\nmore lines")
        return fail

    monkeypatch.setattr(compile_mod, "compiler_available", lambda device: True)
    monkeypatch.setattr(torch, "compile", broken_compile)
    fn = maybe_compile(double, True, CPU, "double")
    assert fn(torch.ones(2)).tolist() == [2.0, 2.0] and not fn.compiled
    err = capsys.readouterr().err
    assert err.count("warning") == 1 and "C++ compile error" in err and "more lines" not in err
    assert fn(torch.ones(1)).tolist() == [2.0] and capsys.readouterr().err == ""
    assert maybe_compile(double, False, CPU, "double") is double
