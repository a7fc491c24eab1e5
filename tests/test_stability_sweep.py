import json
import math
import shutil

import pytest
import torch

from fmrecipes.core.gpt import GPT, GPTConfig
from fmrecipes.core.monitor import OutputNormMonitor
from fmrecipes.stability.search import DivergenceRule, LRSearch, diverged, label, search
from fmrecipes.stability.sweep import unrecovered_rise
from fmrecipes.stability.variants import VARIANTS


def test_monitor_records_only_on_armed_steps_and_matches_manual_rms():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=30, seq_len=8, n_layer=2, n_head=2, d_model=16))
    mon = OutputNormMonitor(every=5)
    x = torch.randint(0, 30, (2, 8))
    mon.before_step(3, model)  # not a monitoring step: no hook, fused attention
    assert not mon.handles and not model.blocks[0].attn.track_max_logit
    model(x)
    assert mon.after_step(3, model) == {}
    mon.before_step(5, model)
    seen = {}
    h = model.blocks[1].mlp.fc2.register_forward_hook(lambda m, i, o: seen.update(fc2=o))
    model(x)
    h.remove()
    rec = mon.after_step(5, model)
    assert not mon.handles and not model.blocks[0].attn.track_max_logit  # disarmed again
    manual = seen["fc2"].pow(2).mean(-1).sqrt().mean().item()
    assert rec["out_rms.fc2.L1"] == pytest.approx(manual, rel=1e-6)
    assert {f"out_rms.{k}.L{i}" for k in ("qkv", "proj", "fc1", "fc2") for i in (0, 1)} <= rec.keys()
    assert rec["max_attn_logit.max"] == max(rec["max_attn_logit.L0"], rec["max_attn_logit.L1"])
    assert rec["out_rms.fc2.max"] == max(rec["out_rms.fc2.L0"], rec["out_rms.fc2.L1"])


def _pt(final, init=7.0, nan=False, rise=0.0):
    return {"final": final, "initial": init, "non_finite": nan, "rise": rise}


def test_divergence_rule_by_hand():
    rule = DivergenceRule(margin=0.5)
    assert label(_pt(4.0), None, rule) == "converged"
    assert label(_pt(4.6), 4.0, rule) == "above_best"  # 4.6 > 4.0 + 0.5
    assert label(_pt(4.4), 4.0, rule) == "converged"
    assert label(_pt(5.0), None, rule) == "converged"  # nothing below: no reference to be worse than
    assert label(_pt(float("nan"), nan=True), 4.0, rule) == "nan"
    assert label(_pt(float("inf")), None, rule) == "nan"
    assert label(_pt(7.5), None, rule) == "above_initial"
    assert label(_pt(7.5), None, DivergenceRule(above_initial=False)) == "converged"
    assert all(diverged(x) for x in ("nan", "above_initial", "no_recovery", "above_best"))
    assert not diverged("converged") and not diverged("off_search") and not diverged("stalled")


def test_a_spike_that_does_not_recover_is_divergence():
    """Synthetic training-loss curves: a spike that recovers within the run is not divergence; one that leaves
    the last loss more than ``spike`` nats above the best before it is, even when the final validation loss
    stays below the initial one; the rule can be turned off."""
    falling = [7.0, 5.0, 4.0, 3.5, 3.4]
    recovered = [7.0, 5.0, 4.0, 6.5, 4.2, 3.9]
    stuck = [7.0, 5.0, 4.0, 6.5, 6.2, 5.3]
    assert unrecovered_rise(falling) == 0.0 and unrecovered_rise(recovered) == 0.0
    assert unrecovered_rise(stuck) == pytest.approx(1.3) and unrecovered_rise([4.0]) == 0.0
    rule = DivergenceRule(margin=0.5, spike=1.0)
    assert [label(_pt(5.0, rise=unrecovered_rise(c)), None, rule) for c in (falling, recovered, stuck)] == [
        "converged", "converged", "no_recovery"]
    assert label(_pt(5.0, rise=1.3), None, DivergenceRule(spike=None)) == "converged"
    assert label(_pt(5.0, rise=1.3), None, DivergenceRule(spike=1.5)) == "converged"  # 1.3 < 1.5


def _edge_at(edge, trained):
    """A synthetic variant: converges (loss 4) at rates up to ``edge``, goes NaN above it."""
    def train_point(lr):
        trained.append(lr)
        return _pt(4.0) if lr <= edge else _pt(float("nan"), nan=True)
    return train_point


@pytest.mark.parametrize("edge", [4e-3, 0.037, 0.19, 1.234, 7.0])
def test_search_brackets_and_bisects_to_the_resolution(edge):
    trained = []
    cfg = LRSearch(start=3e-3, factor=3.0, resolution=1.15, max_lr=30.0)
    found = search(_edge_at(edge, trained), cfg, DivergenceRule())
    assert found.max_stable <= edge < found.first_diverged  # the edge lies inside the bracket
    assert found.first_diverged / found.max_stable <= 1.15 and found.censored is None
    assert len(trained) == len(set(trained)) == len(found.labels)  # no rate trained twice
    assert found.labels[found.max_stable] == "converged" and found.labels[found.first_diverged] == "nan"
    # bracket steps of 3x need at most 3 bisections to get within 1.15x (log2(ln 3 / ln 1.15) < 3)
    steps = [math.log(lr / 3e-3) / math.log(3) for lr in trained]
    brackets = [k for k in steps if abs(k - round(k)) < 1e-3]
    assert len(trained) - len(brackets) <= 3


def test_search_is_censored_when_nothing_diverges_and_when_everything_does():
    trained = []
    found = search(_edge_at(100.0, trained), LRSearch(start=1e-2, factor=10.0, max_lr=5.0), DivergenceRule())
    assert found.censored == "above" and found.max_stable == 5.0 and found.first_diverged is None
    assert trained == [1e-2, 0.1, 1.0, 5.0]  # the bracket stops at max_lr
    trained = []
    found = search(_edge_at(1e-6, trained), LRSearch(start=1e-2, factor=10.0, min_lr=1e-4), DivergenceRule())
    assert found.censored == "below" and found.max_stable is None and found.first_diverged == 1e-4
    trained = []
    found = search(_edge_at(2e-3, trained), LRSearch(start=1e-2, factor=10.0, resolution=1.15), DivergenceRule())
    assert found.max_stable <= 2e-3 < found.first_diverged <= 1.15 * found.max_stable  # bracketed from above


def test_search_uses_the_margin_against_lower_rates():
    """A variant whose loss never goes NaN but rises above the best lower rate by more than the margin diverges
    there; the rule sees only rates below the point (bisection never compares against a diverged rate)."""
    def train_point(lr):  # under-trained below 0.027 (best loss 4.0 there), 0.3 nats worse per 3x above it
        return _pt(4.0 + 0.1 * max(0.0, math.log(0.027 / lr)) + 0.3 * max(0.0, math.log(lr / 0.027) / math.log(3)))

    found = search(train_point, LRSearch(start=3e-3, factor=3.0, resolution=1.15), DivergenceRule(margin=0.5))
    assert found.labels[3e-3] == "converged"  # 0.22 nats worse than the best, but below it: under-trained
    assert found.labels[0.081] == "converged" and found.labels[0.243] == "above_best"  # 4.3 and 4.6 vs 4.0
    edge = 0.027 * 3 ** (0.5 / 0.3)  # where the loss is 4.0 + the 0.5 margin
    assert found.max_stable <= edge < found.first_diverged <= 1.15 * found.max_stable


def _stall_at(stalls, edge, trained):
    """A variant that converges (loss 4) up to ``edge`` and goes NaN above it, except at the rates in ``stalls``,
    which end on a plateau at 6.0 (above the best lower rate by more than the margin, below the initial 7)."""
    def train_point(lr):
        trained.append(lr)
        if lr > edge:
            return _pt(float("nan"), nan=True)
        return _pt(6.0 if lr in stalls else 4.0)
    return train_point


@pytest.mark.parametrize("stall", [0.027, 0.081, 0.1403])  # the 2nd and 3rd bracket rates, the 1st bisection rate
def test_a_stalled_point_is_confirmed_by_the_next_rate_and_does_not_end_the_search(stall):
    cfg = LRSearch(start=3e-3, factor=3.0, resolution=1.15, max_lr=30.0)
    trained = []
    found = search(_stall_at({stall}, 0.2, trained), cfg, DivergenceRule(margin=0.5))
    assert found.labels[stall] == "stalled"
    assert found.max_stable <= 0.2 < found.first_diverged <= 1.15 * found.max_stable  # the true edge
    assert len(trained) == len(set(trained))  # no rate trained twice
    honest = search(_stall_at(set(), 0.2, []), cfg, DivergenceRule(margin=0.5))
    assert (honest.max_stable, honest.first_diverged) == (found.max_stable, found.first_diverged)


def test_an_above_best_point_whose_next_rate_also_fails_is_a_divergence():
    """A plateau that persists at every higher rate is the edge: confirmed, labelled above_best."""
    def train_point(lr):
        return _pt(4.0 if lr < 0.05 else 6.0)
    found = search(train_point, LRSearch(start=3e-3, factor=3.0, resolution=1.15), DivergenceRule(margin=0.5))
    assert found.max_stable < 0.05 <= found.first_diverged <= 1.15 * found.max_stable
    assert found.labels[found.first_diverged] == "above_best"
    assert "stalled" not in found.labels.values()


def test_summary_by_hand():
    from fmrecipes.stability.config import StabilityConfig
    from fmrecipes.stability.experiment import summarize

    def res(v, lr, final, lab, nan=False):
        return {"variant": v, "lr": lr, "seed": 0, "final_val_loss": final, "initial_val_loss": 7.0,
                "non_finite": nan, "label": lab}

    cfg = StabilityConfig(variants=["baseline", "qk_norm"], ppl_lr=1e-3)
    found = {"baseline": {"max_stable": 1e-3, "first_diverged": 1.1e-3,
                          "results": [res("baseline", 1e-3, 4.0, "converged"),
                                      res("baseline", 1.1e-3, float("nan"), "nan", nan=True)]},
             "qk_norm": {"max_stable": 30.0, "first_diverged": None,
                         "results": [res("qk_norm", 1e-3, 4.1, "converged"), res("qk_norm", 30.0, 3.9, "converged")]}}
    s, agg, labels = summarize(cfg, found)
    assert s["max_stable_lr.baseline"] == 1e-3 and s["first_diverged_lr.baseline"] == 1.1e-3
    # qk_norm diverged nowhere up to the search's ceiling: censored, and never divided
    assert s["max_stable_lr.qk_norm"] == ">= 30" and s["first_diverged_lr.qk_norm"] == "none up to 30"
    assert s["lr_gain.baseline"] is None and s["lr_gain.qk_norm"] is None
    assert s["ppl.baseline"] == pytest.approx(math.exp(4.0), abs=1e-3) and s["search_points.qk_norm"] == 2
    assert s["label.baseline.lr_0.0011"] == "nan" and labels[("qk_norm", 30.0)] == "converged"
    assert s["edge_label.baseline"] == "nan" and s["edge_label.qk_norm"] is None and s["stalled_points.qk_norm"] == 0
    assert s["edge_attn_logit.baseline"] is None  # no run directory: nothing logged, nothing made up
    assert s["best_ppl.baseline"] == pytest.approx(math.exp(4.0), abs=1e-3) and s["best_ppl_lr.qk_norm"] == 30.0
    found["qk_norm"].update(max_stable=2e-3, first_diverged=2.2e-3)
    s, _, _ = summarize(cfg, found)
    assert s["max_stable_lr.qk_norm"] == 2e-3 and s["lr_gain.baseline"] == 0.5 and s["lr_gain.qk_norm"] == 1.0
    found["baseline"].update(max_stable=None)
    assert summarize(cfg, found)[0]["max_stable_lr.baseline"] == "< 0.0011"


def test_reproduce_smoke_writes_summary_plots_and_resumes(smoke_all, tmp_path):
    from fmrecipes.reproduce import reproduce

    shutil.copytree(smoke_all / "stability", tmp_path / "stability")  # the shared smoke run, resumed here
    out = tmp_path / "stability"
    summary = json.loads((out / "summary.json").read_text())
    for v in VARIANTS:
        for key in ("max_stable_lr", "first_diverged_lr", "ppl", "lr_gain"):
            assert f"{key}.{v}" in summary
        assert v == "softcap_postnorm" or (f"paper.max_stable_lr.{v}" in summary and f"paper.ppl.{v}" in summary)
    assert summary["paper.lr_gain.qk_norm_cap"] == 1.5
    assert summary["precision"] == "bf16"  # the sweep's default, the paper's precision
    assert summary["bf16_step_time_vs_fp32"] > 0  # what that precision costs on this machine, measured
    assert (out / "seed0" / "final_loss_vs_lr.png").stat().st_size > 5000
    results = sorted((out / "seed0" / "runs").rglob("result.json"))
    assert len(results) == sum(summary[f"search_points.{v}"] for v in VARIANTS)  # the smoke preset runs them all
    metrics = (results[0].parent / "metrics.jsonl").read_text()
    assert "out_rms.qkv.max" in metrics and "max_attn_logit.max" in metrics
    # A killed sweep: one run lost its result (and was mid-way); the rest are not redone.
    keep = {p: p.stat().st_mtime_ns for p in results[1:]}
    lost = json.loads(results[0].read_text())
    results[0].unlink()
    assert reproduce("stability", "smoke", tmp_path) == 0
    assert all(p.stat().st_mtime_ns == t for p, t in keep.items())
    again = json.loads(results[0].read_text())
    assert again["final_val_loss"] == pytest.approx(lost["final_val_loss"], abs=1e-6)
    assert json.loads((out / "summary.json").read_text())["ppl.baseline"] == summary["ppl.baseline"]
    report = (tmp_path / "report.md")
    assert not report.exists()  # only `reproduce all` writes the report


def _tiny_sweep(tmp_path, precision="fp32"):
    from fmrecipes.core.dist import RunConfig
    from fmrecipes.core.train import TrainConfig
    from fmrecipes.data.corpora import CorpusConfig
    from fmrecipes.data.prepared import prepare
    from fmrecipes.stability.config import StabilityConfig

    cfg = StabilityConfig(out=str(tmp_path), model=GPTConfig(vocab_size=300, seq_len=16, n_layer=1, n_head=2,
                                                             d_model=16),
                          data=CorpusConfig(sources=["news"], max_docs_per_source=20, max_chars_per_doc=2000),
                          train=TrainConfig(steps=2, batch_size=4, micro_batch_size=4, warmup_steps=1, log_every=1,
                                            eval_every=2, eval_batches=1, ckpt_every=2),
                          run=RunConfig(precision=precision, progress=False))
    prepare(cfg.data, cfg.model.vocab_size, tmp_path / "data")
    return cfg


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_each_variant_trains_its_own_switches(variant, tmp_path, monkeypatch):
    """The model a sweep run trains carries its variant's switches and their modules (a sweep that built the
    baseline for every variant fails here)."""
    from fmrecipes.core import dist
    from fmrecipes.stability import sweep

    cfg = _tiny_sweep(tmp_path)
    seen = {}
    real_train = sweep.train
    monkeypatch.setattr(sweep, "train", lambda model, *a, **k: (seen.update(model=model), real_train(model, *a, **k))[1])
    sweep.train_run(cfg, sweep.Run(variant, 1e-3, 0), str(tmp_path / "data"), dist.single_process(cfg.run))
    model = seen["model"]
    switches = ("qk_norm", "qkv_norm", "post_proj_norm", "post_fc2_norm", "attn_logit_cap")
    baseline = GPTConfig()
    for s in switches:
        assert getattr(model.config, s) == VARIANTS[variant].get(s, getattr(baseline, s)), s
    attn, block = model.blocks[0].attn, model.blocks[0]
    assert attn.cfg.attn_logit_cap == VARIANTS[variant].get("attn_logit_cap")  # what the attention reads
    assert hasattr(attn, "q_norm") == bool(VARIANTS[variant].get("qk_norm"))
    assert (block.ln_1 is None) == bool(VARIANTS[variant].get("qkv_norm"))
    assert (attn.post_proj_ln is not None) == bool(VARIANTS[variant].get("post_proj_norm"))
    assert (block.mlp.post_fc2_ln is not None) == bool(VARIANTS[variant].get("post_fc2_norm"))


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_sweep_forward_runs_under_autocast_with_bf16(precision, tmp_path, monkeypatch):
    """precision=bf16 trains the forward under bf16 autocast (the paper's precision); the norms inside still run
    in fp32 (as CUDA autocast runs layer_norm)."""
    from fmrecipes.core import dist
    from fmrecipes.stability import sweep

    cfg = _tiny_sweep(tmp_path, precision)
    seen = []
    real_train = sweep.train

    def spy(model, *a, **k):
        model.register_forward_pre_hook(lambda m, i: seen.append(
            torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None))
        norm = model.blocks[0].attn.q_norm
        norm.register_forward_hook(lambda m, i, o: seen.append(("norm", o.dtype)))
        return real_train(model, *a, **k)

    monkeypatch.setattr(sweep, "train", spy)
    sweep.train_run(cfg, sweep.Run("qk_norm", 1e-3, 0), str(tmp_path / "data"), dist.single_process(cfg.run))
    forwards = [s for s in seen if not isinstance(s, tuple)]
    assert forwards and set(forwards) == ({torch.bfloat16} if precision == "bf16" else {None})
    assert {s for s in seen if isinstance(s, tuple)} == {("norm", torch.float32)}


def test_norms_run_in_fp32_under_cpu_autocast():
    """CPU autocast would keep LayerNorm/RMSNorm in bf16; GPT's norms compute in fp32 there as under CUDA, equal
    to the fp32 norm of the bf16 input."""
    from fmrecipes.core.gpt import make_norm

    x = torch.randn(3, 8).to(torch.bfloat16)
    for kind in ("layernorm", "rmsnorm"):
        norm = make_norm(kind, 8, 1e-5, False)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = norm(x)
        assert y.dtype == torch.float32
        torch.testing.assert_close(y, norm(x.float()))


def test_bf16_cost_times_both_precisions_and_leaves_no_gradient(monkeypatch):
    from fmrecipes.core import timing

    model = GPT(GPTConfig(vocab_size=64, seq_len=8, n_layer=1, n_head=2, d_model=16))
    seen = []
    model.register_forward_pre_hook(lambda m, i: seen.append(torch.is_autocast_enabled("cpu")))
    monkeypatch.setattr(timing, "interleaved_medians", lambda runs, rounds, device: (
        [fn() for fn in runs.values()], {"bf16": 3.0, "fp32": 2.0})[1])
    assert timing.bf16_cost(model, torch.randint(64, (2, 9)), torch.device("cpu")) == 1.5
    assert seen == [True, False] and all(p.grad is None for p in model.parameters())
