import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import ROOT, run_cli
from fmrecipes.core.dist import DistEnv, RunConfig
from fmrecipes.data.tokens import PackedDataset, TokenShard, write_shard
from fmrecipes.errors import FmError
from fmrecipes.miniplm.losses import difference_score, instance_nll, rho_score, vanilla_kd_loss
from fmrecipes.miniplm.score import load_scores, score
from fmrecipes.miniplm.select import selector_scores, top_alpha
from fmrecipes.miniplm.stages import compute_matched_steps

QUIET = DistEnv(run=RunConfig(progress=False))

SMOKE = ROOT / "configs" / "miniplm" / "smoke.yaml"


def test_instance_nll_by_hand():
    # One instance, two positions, vocabulary 2: logits (0, ln 3) -> p = (1/4, 3/4).
    logits = torch.tensor([[[0.0, math.log(3)], [0.0, math.log(3)]]])
    targets = torch.tensor([[1, 0]])
    expected = (-math.log(0.75) - math.log(0.25)) / 2
    assert instance_nll(logits, targets).item() == pytest.approx(expected, abs=1e-6)
    masked = instance_nll(logits, targets, torch.tensor([[1, 0]]))  # only the first position counts
    assert masked.item() == pytest.approx(-math.log(0.75), abs=1e-6)


def test_difference_score_matches_the_paper_example():
    # Appendix example: -log p = 1.26, -log p_ref = 4.20 per token -> r = 2.94 (selected).
    r = difference_score(torch.tensor([1.26]), torch.tensor([4.20]))
    assert r.item() == pytest.approx(2.94, abs=1e-6)
    assert rho_score(torch.tensor([3.0]), torch.tensor([2.5])).item() == pytest.approx(0.5)


def test_vanilla_kd_loss_by_hand():
    torch.manual_seed(0)
    s, t, y = torch.randn(2, 3, 5), torch.randn(2, 3, 5), torch.randint(0, 5, (2, 3))
    ce = F.cross_entropy(s.reshape(-1, 5), y.reshape(-1))
    soft = -(torch.softmax(t, -1) * torch.log_softmax(s, -1)).sum(-1).mean()
    assert vanilla_kd_loss(s, t, y, 0.5).item() == pytest.approx((0.5 * ce + 0.5 * soft).item(), abs=1e-6)
    assert vanilla_kd_loss(s, t, y, 0.0).item() == pytest.approx(ce.item(), abs=1e-6)
    one_hot_teacher = F.one_hot(y, 5).float() * 100  # a teacher certain of the label: KD term = CE
    assert vanilla_kd_loss(s, one_hot_teacher, y, 1.0).item() == pytest.approx(ce.item(), abs=1e-4)
    # a temperature softens both distributions: -Σ softmax(t/T) log softmax(s/T)
    soft2 = -(torch.softmax(t / 2, -1) * torch.log_softmax(s / 2, -1)).sum(-1).mean()
    assert vanilla_kd_loss(s, t, y, 0.3, temperature=2.0).item() == pytest.approx((0.7 * ce + 0.3 * soft2).item(),
                                                                                  abs=1e-6)


def test_selection_prefers_the_domain_the_teacher_learned_and_reports_it(tmp_path):
    """Two domains: the teacher beats the reference on 'law' only, so MiniPLM keeps law and drops chat; the
    refined shard and selection.json say so per domain, in corpus order. NaN scores are an error."""
    from fmrecipes.miniplm.select import write_refined

    class Rows:
        seq_len = 4

        def row(self, i):
            return np.full(self.seq_len + 1, i % 7, dtype=np.int64)

    domains = ["law", "chat"] * 10
    nll_ref = np.full(20, 3.0)
    nll_teacher = np.where(np.array(domains) == "law", 2.0, 3.5) + np.linspace(0, 0.01, 20)
    kept = top_alpha(selector_scores("miniplm", nll_teacher, nll_ref), 0.5)
    assert kept.tolist() == list(range(0, 20, 2))  # every law instance, none of chat, in corpus order
    report = write_refined(tmp_path / "r", Rows(), np.arange(100, 120), kept, domains, 16, "miniplm", 0.5)
    assert report["kept_fraction"] == {"chat": 0.0, "law": 1.0} and report["share_of_refined"]["law"] == 1.0
    assert json.loads((tmp_path / "r" / "selection.json").read_text())["kept"] == 10
    assert np.load(tmp_path / "r" / "kept.npy").tolist() == kept.tolist()
    other_rank = DistEnv(rank=1, world_size=1)  # under torchrun only the main process writes the refined corpus
    assert write_refined(tmp_path / "r1", Rows(), np.arange(100, 120), kept, domains, 16, "miniplm", 0.5,
                         other_rank) == report
    assert not (tmp_path / "r1").exists()
    with pytest.raises(FmError, match="NaN"):
        top_alpha(np.array([1.0, float("nan")]), 0.5)


def test_eos_positions_are_skipped_in_scoring_and_vanilla_kd():
    """The official scorer and KD trainer skip the prediction made from an EOS input (the first token of the next
    document): changing what a model predicts there changes nothing; without the option it does."""
    from fmrecipes.miniplm.losses import eos_input_mask
    from fmrecipes.miniplm.score import score_batch

    x = torch.tensor([[5, 7, 0, 9, 3], [4, 4, 4, 4, 4]])  # EOS (0) at position 2 of the first row
    y = torch.tensor([[7, 0, 9, 3, 8], [4, 4, 4, 4, 1]])
    model, cpu = Tiny(), torch.device("cpu")
    skipped = score_batch(model, x, y, cpu, eos_id=0)
    logits = model(x).logits
    keep = torch.tensor([[1, 1, 0, 1, 1], [1, 1, 1, 1, 1]])
    np.testing.assert_allclose(skipped, instance_nll(logits, y, keep).detach().numpy(), rtol=1e-6)
    assert skipped[0] != pytest.approx(score_batch(model, x, y, cpu)[0])  # the option changes the score
    with torch.no_grad():
        model.emb.weight[0] = torch.randn(50) * 5  # another prediction from EOS only
    np.testing.assert_allclose(score_batch(model, x, y, cpu, eos_id=0), skipped, rtol=1e-6)
    assert eos_input_mask(x, None) is None

    torch.manual_seed(1)
    s, t = torch.randn(2, 5, 50), torch.randn(2, 5, 50)
    mask = eos_input_mask(x, 0)
    kept = mask.reshape(-1)
    by_hand = vanilla_kd_loss(s.reshape(1, -1, 50)[:, kept], t.reshape(1, -1, 50)[:, kept],
                              y.reshape(1, -1)[:, kept], 0.5, 2.0)
    assert vanilla_kd_loss(s, t, y, 0.5, 2.0, mask).item() == pytest.approx(by_hand.item(), abs=1e-6)
    s2, t2 = s.clone(), t.clone()
    s2[0, 2], t2[0, 2] = 9.0, -9.0  # the EOS-input position only
    assert vanilla_kd_loss(s2, t2, y, 0.5, 2.0, mask).item() == pytest.approx(by_hand.item(), abs=1e-6)
    assert vanilla_kd_loss(s2, t2, y, 0.5, 2.0).item() != pytest.approx(by_hand.item(), abs=1e-3)


def test_vanilla_kd_training_loss_skips_eos_positions():
    """The loss the students train with (kd_loss_fn) passes the EOS mask on: what the teacher predicts from an
    EOS input does not move it."""
    from fmrecipes.miniplm.stages import kd_loss_fn

    x = torch.tensor([[5, 7, 0, 9, 3]])
    y = torch.tensor([[7, 0, 9, 3, 8]])
    student, teacher, other = Tiny(), Tiny(), Tiny()
    with torch.no_grad():
        other.emb.weight[0] = torch.randn(50) * 5  # differs from ``teacher`` only after an EOS input
    skip = [kd_loss_fn(t, 0.5, 1.0, eos_id=0)(student, (x, y)).item() for t in (teacher, other)]
    keep = [kd_loss_fn(t, 0.5, 1.0)(student, (x, y)).item() for t in (teacher, other)]
    assert skip[0] == pytest.approx(skip[1], abs=1e-6) and keep[0] != pytest.approx(keep[1], abs=1e-4)


def test_document_split_gives_teacher_reference_and_pool_no_shared_document(tmp_path):
    """Each instance belongs to the part holding every one of its tokens; instances straddling two parts'
    documents are dropped; parts are deterministic, in corpus order, and about their fractions of documents."""
    from fmrecipes.miniplm.pool import document_parts, document_split, instance_documents

    rng = np.random.default_rng(0)
    docs = [rng.integers(1, 50, int(rng.integers(5, 40))).tolist() for _ in range(200)]
    data = PackedDataset(write_shard(tmp_path / "s", docs, 0, 50), 8)
    parts = document_split(data, {"teacher": 0.4, "reference": 0.1}, seed=3)
    assert list(parts) == ["teacher", "reference", "pool"]
    seen = {k: set(instance_documents(data, v)) for k, v in parts.items()}
    assert not seen["teacher"] & seen["pool"] and not seen["reference"] & seen["pool"]
    assert not seen["teacher"] & seen["reference"]
    assert all(np.all(np.diff(v) > 0) for v in parts.values())
    assert 0.3 < len(seen["teacher"]) / 200 < 0.5 and 0.05 < len(seen["reference"]) / 200 < 0.15
    total = sum(len(v) for v in parts.values())
    assert 0.6 * len(data) < total < len(data)  # only straddling instances are dropped
    again = document_split(data, {"teacher": 0.4, "reference": 0.1}, seed=3)
    assert all(np.array_equal(parts[k], again[k]) for k in parts)
    # documents shorter than an instance: one instance spans several, and every one of them must be its part's
    short = PackedDataset(write_shard(tmp_path / "short", [[1, 2]] * 300, 0, 50), 8)
    starts = short.shard.doc_index
    for seed in range(3):
        split = document_split(short, {"teacher": 0.4, "reference": 0.1}, seed=seed)
        part_of_doc = document_parts(len(starts), {"teacher": 0.4, "reference": 0.1}, seed=seed)
        assert sum(len(v) for v in split.values()) > 0
        for k, idx in enumerate(split.values()):
            for i in idx:
                first = i * short.stride
                touched = range(np.searchsorted(starts, first, "right") - 1,
                                np.searchsorted(starts, first + short.seq_len, "right"))
                assert len(touched) >= 3 and all(part_of_doc[d] == k for d in touched), (seed, i)


def test_headline_budget_is_one_pass_over_the_selected_data():
    """The students' budget reads each selected instance exactly once in a pass (sampling by epochs, whole
    batches); with-replacement sampling, the bug this guards, would read about 63% of them."""
    from types import SimpleNamespace

    from fmrecipes.core.dist import single_process
    from fmrecipes.core.train import TrainConfig, step_indices
    from fmrecipes.miniplm.config import MiniPLMConfig
    from fmrecipes.miniplm.experiment import headline_budget

    pool = SimpleNamespace(pool_indices=np.arange(1001))
    cfg = MiniPLMConfig(alpha=0.5, student_train=TrainConfig(steps=999, batch_size=16), student_passes=1.0)
    budget = headline_budget(cfg, pool)
    assert budget.steps == 500 // 16  # int(0.5 * 1001) instances, whole batches
    read = torch.cat([step_indices(k, budget, 500, single_process()) for k in range(1, budget.steps + 1)])
    assert len(read) == len(set(read.tolist())) > 500 - 16  # every instance at most once, all but a partial batch
    cfg.student_passes = 2.0
    budget = headline_budget(cfg, pool)
    read = torch.cat([step_indices(k, budget, 500, single_process()) for k in range(1, budget.steps + 1)])
    assert budget.steps == 1000 // 16 and max(np.bincount(read.numpy())) == 2  # two passes: twice at most
    cfg.student_passes = None
    assert headline_budget(cfg, pool).steps == 999 and headline_budget(cfg, pool).sampling == "epochs"


def test_students_teacher_and_reference_read_only_their_parts(smoke_run):
    """The run records each part's instances (parts.npz) and what every model read (instances.npy): the teacher
    and the reference read only their own parts, no document of theirs is in the scored pool D, and the
    students read D (a teacher trained on D's documents fails here)."""
    from fmrecipes.data.prepared import packed
    from fmrecipes.miniplm.pool import instance_documents

    parts = np.load(smoke_run / "parts.npz")
    train, _ = packed(TokenShard(smoke_run / "data" / "train"), TokenShard(smoke_run / "data" / "val"), 32, ["news"])
    for model, part in (("teacher", "teacher"), ("reference", "reference")):
        read = np.load(smoke_run / "models" / model / "instances.npy")
        assert np.array_equal(read, parts[part])
        assert not set(instance_documents(train, read)) & set(instance_documents(train, parts["pool"])), model
    assert np.array_equal(np.load(smoke_run / "students" / "s16" / "no_kd" / "instances.npy"), parts["pool"])
    assert set(np.load(smoke_run / "models" / "rho_proxy" / "instances.npy")) <= set(parts["pool"])


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_scoring_and_student_validation_follow_the_run_precision(precision, tmp_path, shard_data):
    """Scores and the students' validation losses run under bf16 autocast exactly when the run's precision says
    so (not by device type)."""
    from fmrecipes.core.gpt import GPT, GPTConfig
    from fmrecipes.miniplm.stages import val_losses

    env = DistEnv(run=RunConfig(precision=precision, progress=False))
    model = GPT(GPTConfig(vocab_size=64, seq_len=8, n_layer=1, n_head=2, d_model=16))
    seen = set()
    model.blocks[0].register_forward_pre_hook(lambda m, i: seen.add(torch.is_autocast_enabled("cpu")))
    score(model, shard_data, np.arange(8), tmp_path / "scores", "h", "m", batch_size=4, chunk=8, env=env)
    val_losses(model, shard_data, ["d"] * len(shard_data), 4, env, limit=8)
    assert seen == {precision == "bf16"}


def test_student_validation_reports_each_domain_and_their_balanced_mean(shard_data):
    """The balanced loss is the mean of the per-domain means (selection shifts the mix; the pooled mean would
    weigh the larger domain more)."""
    from fmrecipes.core.gpt import GPT, GPTConfig
    from fmrecipes.miniplm.stages import val_losses

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=64, seq_len=8, n_layer=1, n_head=2, d_model=16))
    n = len(shard_data)
    domains = ["big"] * (n - 5) + ["small"] * 5
    out = val_losses(model, shard_data, domains, 4, DistEnv(run=RunConfig(precision="fp32", progress=False)))
    assert out["balanced"] == pytest.approx((out["big"] + out["small"]) / 2)
    assert out["all"] == pytest.approx(((n - 5) * out["big"] + 5 * out["small"]) / n, rel=1e-5)
    assert out["balanced"] != pytest.approx(out["all"], abs=1e-4)


def test_compute_matched_steps():
    assert compute_matched_steps(100, n_student=100, n_teacher=900) == 25  # 300 / 1200 of the budget
    assert compute_matched_steps(10, 1, 10**9) == 1


def test_top_alpha_is_deterministic_and_keeps_order():
    scores = np.array([0.1, 5.0, 3.0, 5.0, -1.0, 2.0])
    assert top_alpha(scores, 0.5).tolist() == [1, 2, 3]
    assert top_alpha(np.array([1.0, 1.0, 1.0, 1.0]), 0.5).tolist() == [0, 1]  # ties: earlier first
    assert top_alpha(scores, 1.0).tolist() == list(range(6))
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(FmError, match="alpha=.* must be in \\(0, 1\\]"):
            top_alpha(scores, bad)
    nll_t, nll_r = np.array([2.0, 1.0, 3.0]), np.array([2.5, 4.0, 2.0])
    assert selector_scores("miniplm", nll_t, nll_r).tolist() == [0.5, 3.0, -1.0]
    assert top_alpha(selector_scores("teacher-loss", nll_t, nll_r), 0.34).tolist() == [1]
    r1 = selector_scores("random", n=10, seed=3)
    assert np.array_equal(r1, selector_scores("random", n=10, seed=3))


class Tiny(torch.nn.Module):
    """A bigram model with a Hugging Face causal LM's call signature: logits depend only on the current token."""

    def __init__(self, vocab=50):
        super().__init__()
        torch.manual_seed(0)
        self.emb = torch.nn.Embedding(vocab, vocab)

    def get_input_embeddings(self):
        return self.emb

    def forward(self, input_ids, attention_mask=None, use_cache=False):
        from types import SimpleNamespace

        return SimpleNamespace(logits=self.emb(input_ids))


@pytest.fixture()
def shard_data(tmp_path):
    rng = np.random.default_rng(0)
    write_shard(tmp_path / "shard", [rng.integers(1, 50, 400).tolist()], 0, 50)
    return PackedDataset(TokenShard(tmp_path / "shard"), 8)


def test_score_resumes_after_losing_chunks_with_identical_scores(tmp_path, shard_data):
    idx = np.arange(0, len(shard_data), 2)
    full = score(Tiny(), shard_data, idx, tmp_path / "a", "h", "t", batch_size=4, chunk=6, env=QUIET)
    assert full.shape == (len(idx),)
    manual = instance_nll(Tiny()(shard_data.batch(idx[:3])[0]).logits, shard_data.batch(idx[:3])[1])
    assert np.allclose(full[:3], manual.detach().numpy(), atol=1e-6)
    # Simulate a kill: the final files and the last chunks never got written.
    out = tmp_path / "a"
    (out / "meta.json").unlink()
    (out / "scores.npy").unlink()
    chunks = sorted((out / "chunks").iterdir())
    kept = {c: c.stat().st_mtime_ns for c in chunks[:2]}
    for c in chunks[2:]:
        c.unlink()
    again = score(Tiny(), shard_data, idx, out, "h", "t", batch_size=4, chunk=6, env=QUIET)
    assert np.array_equal(again, full)
    assert all(c.stat().st_mtime_ns == t for c, t in kept.items())
    # a chunk cut short (a full disk) is scored again; a cut final file is a one-line error
    (out / "meta.json").unlink()
    (out / "scores.npy").unlink()
    chunks[0].write_bytes(chunks[0].read_bytes()[:50])
    assert np.array_equal(score(Tiny(), shard_data, idx, out, "h", "t", batch_size=4, chunk=6, env=QUIET), full)
    (out / "scores.npy").write_bytes((out / "scores.npy").read_bytes()[:60])
    with pytest.raises(FmError, match=r"scores.npy is truncated or corrupt"):
        score(Tiny(), shard_data, idx, out, "h", "t", batch_size=4, chunk=6, env=QUIET)


def test_score_alignment_is_checked(tmp_path, shard_data):
    idx = np.arange(len(shard_data))
    score(Tiny(), shard_data, idx, tmp_path / "s", "hash-a", "t", env=QUIET)
    with pytest.raises(FmError, match="comes from another corpus or instance order"):
        load_scores(tmp_path / "s", expected_hash="hash-b")
    with pytest.raises(FmError, match=r"has \d+ scores, expected 3"):
        load_scores(tmp_path / "s", expected_hash="hash-a", expected_count=3)
    with pytest.raises(FmError, match="computed on another corpus or instance order"):
        score(Tiny(), shard_data, idx, tmp_path / "s", "hash-b", "t", env=QUIET)
    with pytest.raises(FmError, match="missing or incomplete"):
        load_scores(tmp_path / "nothing")


def test_truncated_shard_is_a_clear_error(tmp_path):
    write_shard(tmp_path / "s", [[1, 2, 3, 4]], 0, 10)
    with open(tmp_path / "s" / "tokens.bin", "r+b") as f:
        f.truncate(4)
    with pytest.raises(FmError, match="is truncated or corrupt"):
        TokenShard(tmp_path / "s")


@pytest.fixture(scope="module")
def smoke_run(smoke_all):
    """The shared smoke reproduction's replicate (seed 0); the CLI tests below add stages beside it."""
    return smoke_all / "miniplm" / "seed0"


def test_reproduce_smoke_summary(smoke_run):
    s = json.loads((smoke_run.parent / "summary.json").read_text())
    for method in ("no_kd", "vanilla_kd", "vanilla_kd_steps", "random", "miniplm", "rho"):
        assert math.isfinite(s[f"val_loss.{method}.s16"]) and s[f"flops.{method}"] > 0
    assert s["flops.vanilla_kd"] < s["flops.vanilla_kd_steps"]  # fewer steps at matched compute
    assert s["flops.miniplm"] > s["flops.random"]  # the offline teacher forward is counted once
    assert "val_loss.miniplm.llama" in s and "val_loss_news.no_kd.s16" in s
    assert "val_loss_data_limited.miniplm.s16" in s and "val_loss_data_limited.no_kd.s16" in s
    assert s["instances.teacher"] > 0 and s["instances.reference"] > 0 and s["instances.pool"] > 0
    assert s["kept_fraction_miniplm.news"] == pytest.approx(0.5, abs=0.01)
    assert (smoke_run / "val_loss_vs_tokens.png").stat().st_size > 5000
    sel = json.loads((smoke_run / "refined" / "miniplm" / "selection.json").read_text())
    kept = np.load(smoke_run / "refined" / "miniplm" / "kept.npy")
    assert sel["kept"] == len(kept) and np.all(np.diff(kept) > 0)  # corpus order kept


def test_refined_shard_holds_exactly_the_selected_instances(smoke_run):
    from fmrecipes.miniplm.config import MiniPLMConfig
    from fmrecipes import config as configlib
    from fmrecipes.miniplm.pool import build_pool

    cfg = configlib.load(MiniPLMConfig, smoke_run / "config.yaml")
    pool = build_pool(cfg)
    kept = np.load(smoke_run / "refined" / "miniplm" / "kept.npy")
    refined = PackedDataset(TokenShard(smoke_run / "refined" / "miniplm" / "shard"), cfg.seq_len,
                            stride=cfg.seq_len + 1)
    assert len(refined) == len(kept)
    for j in (0, len(kept) // 2, len(kept) - 1):
        assert np.array_equal(refined.row(j), pool.train.row(int(pool.pool_indices[kept[j]])))
    t = np.load(smoke_run / "scores" / "teacher" / "scores.npy")
    r = np.load(smoke_run / "scores" / "reference" / "scores.npy")
    assert np.array_equal(np.sort(kept), top_alpha(r - t, 0.5))
    # The run scored with EOS-input positions skipped (the default): recompute a batch holding an EOS.
    from fmrecipes.core.checkpoint import latest_checkpoint, load_model
    from fmrecipes.miniplm.score import score_batch

    teacher = load_model(latest_checkpoint(smoke_run / "models" / "teacher"))
    eos = pool.train.shard.meta["eos_id"]
    x, _ = pool.train.batch(pool.pool_indices)
    at = np.flatnonzero((x == eos).any(1).numpy())[:16]  # instances of D whose inputs hold an EOS
    x, y = pool.train.batch(pool.pool_indices[at])
    assert cfg.skip_eos_positions and len(at) > 0
    cpu = torch.device("cpu")
    np.testing.assert_allclose(t[at], score_batch(teacher, x, y, cpu, eos_id=eos), rtol=1e-5)
    assert not np.allclose(t[at], score_batch(teacher, x, y, cpu), rtol=1e-5)


def _cli_args(out):
    return ["--config", str(SMOKE), "--out", str(out)]


def test_cli_stages_bad_input_and_two_rank_scoring(smoke_run, tmp_path):
    out = smoke_run  # reuse the prepared data and models
    teacher = out / "models" / "teacher"
    one = run_cli("miniplm", "score", *_cli_args(out), "--model", str(teacher), "--name", "cli_one")
    assert one.returncode == 0, one.stderr
    torchrun = Path(sys.executable).with_name("torchrun")
    two = subprocess.run([str(torchrun), "--nproc_per_node", "2", "-m", "fmrecipes", "miniplm", "score",
                          *_cli_args(out), "--model", str(teacher), "--name", "cli_two"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    a = np.load(out / "scores" / "cli_one" / "scores.npy")
    b = np.load(out / "scores" / "cli_two" / "scores.npy")
    assert np.array_equal(a, b)  # bit for bit
    assert np.array_equal(a, np.load(out / "scores" / "teacher" / "scores.npy"))
    bad = run_cli("miniplm", "select", *_cli_args(out), "--alpha", "1.5")
    assert bad.returncode == 2 and "--alpha 1.5 must be in (0, 1]" in bad.stderr
    sel = run_cli("miniplm", "select", *_cli_args(out), "--alpha", "0.25", "--method", "teacher-loss")
    assert sel.returncode == 0, sel.stderr
    assert json.loads(sel.stdout)["alpha"] == 0.25


def test_score_rejects_a_model_whose_vocabulary_is_too_small(smoke_run, tmp_path):
    from fmrecipes.core.checkpoint import save_model
    from fmrecipes.core.gpt import GPT, GPTConfig

    small = tmp_path / "small_vocab"
    small.mkdir()
    save_model(GPT(GPTConfig(vocab_size=100, seq_len=32, n_layer=1, n_head=2, d_model=16)), small)
    res = run_cli("miniplm", "score", *_cli_args(smoke_run), "--model", str(small), "--name", "x", "--tokenizer", "corpus")
    assert res.returncode == 2
    assert "has a vocabulary of 100 tokens, which does not cover the corpus tokenizer's" in res.stderr


class _TextOracle(torch.nn.Module):
    """A causal LM (Hugging Face call signature) whose total NLL of a row is ``nats_per_char`` times the length of
    the text the row decodes to, spread evenly over the tokens it predicts: two oracles with different
    tokenizers give every text the same total log-probability."""

    can_generate = True

    def __init__(self, tok, nats_per_char: float):
        super().__init__()
        self.tok, self.rate = tok, nats_per_char

    def forward(self, input_ids, attention_mask=None, use_cache=False):
        from types import SimpleNamespace

        B, T = input_ids.shape
        V = len(self.tok)
        mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
        logits = torch.zeros(B, T, V)
        for b in range(B):
            ids = input_ids[b][mask[b].bool()].tolist()
            per_token = self.rate * len(self.tok.decode(ids)) / (len(ids) - 1)
            p = math.exp(-per_token)
            for j in range(len(ids) - 1):  # right padding: real tokens come first
                logits[b, j, ids[j + 1]] = math.log(p * (V - 1) / (1 - p))
        return SimpleNamespace(logits=logits)


def test_models_with_equal_total_log_probability_score_equal_whatever_their_tokenizer(tmp_path):
    """Scores are nats per corpus token for every model: a teacher with another tokenizer that gives each text
    the reference's total log-probability gets r = 0 (per-own-token means would not: the tokenizers cut the
    same text into different numbers of tokens)."""
    from fmrecipes.core.tokenizer import train_bpe
    from fmrecipes.data.corpora import news_documents
    from fmrecipes.miniplm.losses import difference_score
    from fmrecipes.miniplm.score import score_batch

    docs = [d.text for d in news_documents()[:60]]
    corpus_tok = train_bpe(docs, 300, tmp_path / "corpus")
    other_tok = train_bpe(docs, 1200, tmp_path / "other")
    L = 24
    rows = torch.tensor([corpus_tok(d, add_special_tokens=False)["input_ids"][:L + 1] for d in docs[:6]])
    x, y = rows[:, :-1], rows[:, 1:]
    cpu = torch.device("cpu")
    ref = score_batch(_TextOracle(corpus_tok, 0.3), x, y, cpu, (corpus_tok, corpus_tok))
    teacher = score_batch(_TextOracle(other_tok, 0.3), x, y, cpu, (corpus_tok, other_tok))
    counts = [len(other_tok(t, add_special_tokens=False)["input_ids"]) for t in corpus_tok.batch_decode(rows.tolist())]
    assert len(set(counts)) > 1 and counts != [L + 1] * len(counts)  # the other tokenizer cuts the texts otherwise
    np.testing.assert_allclose(difference_score(torch.tensor(teacher), torch.tensor(ref)).numpy(), 0.0, atol=1e-4)
    texts = corpus_tok.batch_decode(rows.tolist())
    np.testing.assert_allclose(ref, [0.3 * len(t) / L for t in texts], rtol=1e-4)  # total / corpus tokens


def test_cross_family_teacher_scores_text_with_its_own_tokenizer(smoke_run, tmp_path):
    from fmrecipes.core.gpt import GPTConfig
    from fmrecipes.core.hf import llama_like
    from fmrecipes.core.tokenizer import train_bpe
    from fmrecipes.data.corpora import news_documents

    hf_dir = tmp_path / "other_family"
    tok = train_bpe((d.text for d in news_documents()[:40]), 300, hf_dir)  # a different tokenizer
    llama_like(GPTConfig(vocab_size=len(tok), seq_len=128, n_layer=1, n_head=2, d_model=16)).save_pretrained(str(hf_dir))
    unsaid = run_cli("miniplm", "score", *_cli_args(smoke_run), "--model", str(hf_dir), "--name", "foreign")
    assert unsaid.returncode == 2 and "differs from the corpus's: pass --tokenizer model" in unsaid.stderr
    assert not (smoke_run / "scores" / "foreign").exists()
    res = run_cli("miniplm", "score", *_cli_args(smoke_run), "--model", str(hf_dir), "--name", "foreign",
                  "--tokenizer", "model")
    assert res.returncode == 0, res.stderr
    scores = np.load(smoke_run / "scores" / "foreign" / "scores.npy")
    teacher = np.load(smoke_run / "scores" / "teacher" / "scores.npy")
    assert scores.shape == teacher.shape and np.isfinite(scores).all()
    # an untrained model: about ln|V| nats per token of its own, reported per corpus token
    from fmrecipes import config as configlib
    from fmrecipes.miniplm.config import MiniPLMConfig
    from fmrecipes.miniplm.pool import build_pool

    pool = build_pool(configlib.load(MiniPLMConfig, SMOKE, [f"out={smoke_run}"]))
    x, y = pool.train.batch(pool.pool_indices[:64])
    texts = pool.tokenizer.batch_decode(torch.cat([x[:, :1], y], dim=1).tolist())
    own = np.array([len(tok(t, add_special_tokens=False)["input_ids"]) - 1 for t in texts])
    per_own_token = scores[:64] * y.shape[1] / own
    assert abs(per_own_token.mean() - math.log(len(tok))) < 0.5


def test_cli_train_ref_and_pretrain_with_vanilla_kd(smoke_run):
    ref = run_cli("miniplm", "train-ref", *_cli_args(smoke_run))
    assert ref.returncode == 0 and ref.stdout.strip().endswith("models/reference"), ref.stderr
    res = run_cli("miniplm", "pretrain", *_cli_args(smoke_run), "--student", "s16", "--data", "random", "--kd",
                  "vanilla", "--teacher", str(smoke_run / "models" / "teacher"), "--compute-matched")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["run"].endswith("students/s16/random_kd") and math.isfinite(out["val_loss"])
    rows = [json.loads(line) for line in (smoke_run / "students" / "s16" / "random_kd" / "metrics.jsonl")
            .read_text().splitlines()]
    assert rows[-1]["step"] < 6  # compute-matched: fewer steps than the 6 of the no-KD budget
    bad = run_cli("miniplm", "pretrain", *_cli_args(smoke_run), "--student", "nobody")
    assert bad.returncode == 2 and "--student 'nobody' is not in the config's students (s16)" in bad.stderr
    no_teacher = run_cli("miniplm", "pretrain", *_cli_args(smoke_run), "--student", "s16", "--kd", "vanilla")
    assert no_teacher.returncode == 2 and "--kd vanilla needs --teacher PATH" in no_teacher.stderr
