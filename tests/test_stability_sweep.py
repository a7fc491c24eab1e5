import json
import math
import shutil

import pytest
import torch

from fmrecipes.core.gpt import GPT, GPTConfig
from fmrecipes.core.monitor import OutputNormMonitor
from fmrecipes.stability.config import DivergenceRule
from fmrecipes.stability.sweep import aggregate, classify, stable_range, unrecovered_rise


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


def _r(v, lr, final, init=7.0, seed=0, nan=False):
    return {"variant": v, "lr": lr, "seed": seed, "final_val_loss": final, "initial_val_loss": init, "non_finite": nan}


def test_divergence_rule_by_hand():
    results = [
        _r("a", 1e-3, 5.0), _r("a", 1e-2, 4.0), _r("a", 1e-1, 4.6), _r("a", 1.0, 4.4),  # 4.6 > 4.0 + 0.5
        _r("b", 1e-3, 6.0), _r("b", 1e-2, 4.5), _r("b", 1e-1, float("nan"), nan=True), _r("b", 1.0, 7.5),
    ]
    labels = classify(aggregate(results), DivergenceRule(margin=0.5))
    assert labels[("a", 1e-3)] == "converged"  # worse than best but below the best LR: under-trained
    assert labels[("a", 1e-1)] == "above_best" and labels[("a", 1.0)] == "converged"
    assert labels[("b", 1e-1)] == "nan" and labels[("b", 1.0)] == "above_initial"
    grid = [1e-3, 1e-2, 1e-1, 1.0]
    assert stable_range(labels, "a", grid) == (1e-2, 1e-1)  # the first divergence ends the stable range
    assert stable_range(labels, "b", grid) == (1e-2, 1e-1)
    labels_all_good = classify(aggregate([_r("c", 1e-3, 5.0), _r("c", 1e-2, 4.0)]), DivergenceRule())
    assert stable_range(labels_all_good, "c", [1e-3, 1e-2]) == (1e-2, None)


def test_a_spike_that_does_not_recover_is_divergence():
    """Synthetic training-loss curves: a spike that recovers within the run is not divergence; one that leaves
    the last loss more than ``spike`` nats above the best before it is, even when the final validation loss
    stays below the initial one; the rule can be turned off."""
    falling = [7.0, 5.0, 4.0, 3.5, 3.4]
    recovered = [7.0, 5.0, 4.0, 6.5, 4.2, 3.9]
    stuck = [7.0, 5.0, 4.0, 6.5, 6.2, 5.3]
    assert unrecovered_rise(falling) == 0.0 and unrecovered_rise(recovered) == 0.0
    assert unrecovered_rise(stuck) == pytest.approx(1.3) and unrecovered_rise([4.0]) == 0.0
    runs = [{**_r("a", lr, 5.0), "unrecovered_rise": unrecovered_rise(c)}
            for lr, c in ((1e-3, falling), (1e-2, recovered), (1e-1, stuck))]
    labels = classify(aggregate(runs), DivergenceRule(margin=0.5, spike=1.0))
    assert [labels[("a", lr)] for lr in (1e-3, 1e-2, 1e-1)] == ["converged", "converged", "no_recovery"]
    assert labels == {**labels, ("a", 1e-1): "no_recovery"} and stable_range(labels, "a", [1e-3, 1e-2, 1e-1]) == (
        1e-2, 1e-1)
    assert classify(aggregate(runs), DivergenceRule(spike=None))[("a", 1e-1)] == "converged"
    assert classify(aggregate(runs), DivergenceRule(spike=1.5))[("a", 1e-1)] == "converged"  # 1.3 < 1.5


def test_seeds_are_averaged_and_any_nan_diverges():
    agg = aggregate([_r("a", 0.1, 4.0, seed=0), _r("a", 0.1, 5.0, seed=1),
                     _r("b", 0.1, 4.0, seed=0), _r("b", 0.1, float("nan"), seed=1, nan=True)])
    assert agg[("a", 0.1)]["final"] == 4.5 and not agg[("a", 0.1)]["non_finite"]
    assert math.isnan(agg[("b", 0.1)]["final"]) and agg[("b", 0.1)]["non_finite"]


def test_reproduce_smoke_writes_summary_plots_and_resumes(smoke_all, tmp_path):
    from fmrecipes.reproduce import reproduce

    shutil.copytree(smoke_all / "stability", tmp_path / "stability")  # the shared smoke run, resumed here
    out = tmp_path / "stability"
    summary = json.loads((out / "summary.json").read_text())
    for v in ("baseline", "qk_norm", "qkv_norm", "qk_norm_cap"):
        for key in ("max_stable_lr", "first_diverged_lr", "ppl", "lr_gain"):
            assert f"{key}.{v}" in summary
        assert f"paper.max_stable_lr.{v}" in summary and f"paper.ppl.{v}" in summary
    assert summary["paper.lr_gain.qk_norm_cap"] == 1.5
    assert summary["precision"] == "bf16"  # the sweep's default, the paper's precision
    assert (out / "seed0" / "final_loss_vs_lr.png").stat().st_size > 5000
    results = sorted((out / "seed0" / "runs").rglob("result.json"))
    assert len(results) == 4 * 2
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


def test_summary_by_hand():
    from fmrecipes.stability.config import StabilityConfig
    from fmrecipes.stability.experiment import summarize

    cfg = StabilityConfig(variants=["baseline", "qk_norm"], lrs=[1e-3, 1e-2, 1e-1], ppl_lr=1e-3)
    results = [_r("baseline", 1e-3, 4.0), _r("baseline", 1e-2, 4.9), _r("baseline", 1e-1, float("nan"), nan=True),
               _r("qk_norm", 1e-3, 4.1), _r("qk_norm", 1e-2, 3.9), _r("qk_norm", 1e-1, 4.2)]
    s, _, _ = summarize(cfg, results)
    assert s["max_stable_lr.baseline"] == 1e-3 and s["first_diverged_lr.baseline"] == 1e-2
    # qk_norm diverged nowhere: its max stable LR is censored at the top of the grid and never divided
    assert s["max_stable_lr.qk_norm"] == ">= 0.1" and s["first_diverged_lr.qk_norm"] == "none in grid"
    assert s["lr_gain.baseline"] is None and s["lr_gain.qk_norm"] is None
    assert s["ppl.baseline"] == pytest.approx(math.exp(4.0), abs=1e-3)
    assert s["label.baseline.lr_0.1"] == "nan"
    results[-1] = _r("qk_norm", 1e-1, float("nan"), nan=True)
    s, _, _ = summarize(cfg, results)
    assert s["max_stable_lr.qk_norm"] == 1e-2 and s["lr_gain.baseline"] == 0.1 and s["lr_gain.qk_norm"] == 1.0
