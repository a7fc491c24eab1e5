"""The benchmarks this issue measures with run end to end at toy sizes (no timing is asserted): their JSON holds
what ``make bench`` (benchmarks/run_all.py) tabulates, and the scores they compare agree."""

import json
import subprocess
import sys

from conftest import ROOT

BENCH = ROOT / "benchmarks"
TINY = ["--n-layer", "1", "--n-head", "2", "--vocab", "128", "--seq-len", "16", "--batch", "4", "--rounds", "1",
        "--peak-seconds", "0.01"]


def _run(name: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, str(BENCH / f"{name}.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout[done.stdout.index("{"):])


def test_scoring_and_training_benchmarks_report_what_make_bench_prints():
    from fmrecipes.report.bench import rows

    score = _run("miniplm_score", *TINY, "--d-model", "32", "--instances", "16", "--profile")
    assert score["eos_positions_skipped"] > 0  # the plain loop's EOS mask is exercised
    assert max(score["max_abs_score_difference"].values()) < 1e-5
    assert any("mm" in line for line in score["profile_one_batch"]["plain_hf_loop"])
    train = _run("lm_throughput", *TINY, "--d-models", "32", "64", "--steps", "1")
    assert [s["d_model"] for s in train["sizes"]] == [32, 64]
    peak = _run("machine_peak", "--d-model", "32", "--vocab", "128", "--tokens", "64", "--seconds", "0.01")
    assert peak["fp32"]["peak_flops_per_s"] == max(peak["fp32"]["flops_per_s"]) > 0
    assert 0 < score["mfu"]["fmrecipes_compiled"] and all(0 < v for s in train["sizes"] for v in s["mfu"].values())
    table = rows("machine_peak", peak) + rows("miniplm_score", score) + rows("lm_throughput", train)
    assert [t[2] for t in table] == [None, None, None, None, 1.5, 0.6, None, 1.2, 0.6, None, 0.95,
                                     1.2, 0.6, None, 0.95]
    assert all(v > 0 for _, v, _, _ in table)
    compiled = {**train, "sizes": [{**s, "compiled_ours_vs_compiled_hf_llama": {"median": 1.1},
                                     "mfu": {**s["mfu"], "fmrecipes_gpt_compiled": 0.61}} for s in train["sizes"]]}
    extra = [t for t in rows("lm_throughput", compiled) if "compiled" in t[0]]  # make bench runs it with --compile
    assert [(t[1], t[2]) for t in extra] == [(1.1, None), (0.61, 0.6)] * 2


def test_sampling_benchmark_reports_flat_and_peaked_settings():
    from fmrecipes.report.bench import rows

    r = _run("sso_generate", "--d-model", "16", "--n-layer", "1", "--n-head", "2", "--vocab", "64", "--batch", "4",
             "--prompt-len", "8", "--new-tokens", "4", "--seq-len", "16", "--rounds", "1")
    assert r["peaked"]["mean_nucleus_tokens"] < r["mean_nucleus_tokens"]  # the scaled head narrows the nucleus
    assert [t[2] for t in rows("sso_generate", r)] == [1.5, 1.5, None, None, None] and r["bandwidth_utilisation"] > 0
    assert 0 < r["sampling_share"] and 0 < r["peaked"]["sampling_share"]


def test_model_flops_by_hand():
    """PaLM's count: 2 x the multiplied weights (blocks and head, not the embedding lookup) + 4·L·T·d per token
    forward, 3x that to train; MFU = achieved / peak."""
    import pytest
    import torch

    from fmrecipes.core.flops import forward_flops_per_token, matmul_params, train_flops_per_token, utilisation
    from fmrecipes.core.gpt import GPTConfig

    cfg = GPTConfig(vocab_size=100, seq_len=10, n_layer=2, n_head=2, d_model=8, mlp_ratio=4.0)
    assert matmul_params(cfg) == 2 * (4 * 64 + 2 * 8 * 32) + 8 * 100  # QKV+proj, MLP up+down, head
    assert forward_flops_per_token(cfg) == 2 * matmul_params(cfg) + 4 * 2 * 10 * 8
    assert train_flops_per_token(cfg) == 3 * forward_flops_per_token(cfg)
    assert utilisation(50.0, 200.0) == 0.25
    with pytest.raises(ValueError):
        utilisation(1.0, 0.0)
    # counted by torch's FLOP counter, for networks with no shape formula: 2 x (2 x 4 x 3) for a Linear(4, 3) on
    # two rows, and 2 x 1 x 9 x (2 x 4 x 4) x 4 positions for a 3x3 convolution from 1 to 2 channels on 4x4
    from fmrecipes.core.flops import counted_forward_flops

    assert counted_forward_flops(torch.nn.Linear(4, 3), torch.ones(2, 4)) == 2 * 2 * 4 * 3
    conv = torch.nn.Conv2d(1, 2, 3, padding=1)
    assert counted_forward_flops(conv, torch.ones(1, 1, 4, 4)) == 2 * 1 * 9 * 2 * 16


def test_sim_sampling_benchmark_counts_each_samplers_flops():
    from fmrecipes.report.bench import rows

    r = _run("sim_sampling", "--batch", "4", "--rounds", "1", "--nfe", "3", "--peak-seconds", "0.01", "--channels",
             "8,16", "--image-size", "16")
    assert r["flops_per_evaluation_per_image"] > 0 and r["mfu"]["teacher_nfe3"] > 0 and r["mfu"]["one_step"] > 0
    assert [t[0] for t in rows("sim_sampling", r)] == ["SIM one step / teacher 35-NFE Heun", "SIM one step, MFU"]


def test_scenes_benchmark_reports_its_peer_ratio_and_bandwidth_utilisation():
    from fmrecipes.report.bench import rows

    r = _run("scenes", "--n", "8", "--rounds", "1", "--size", "32")
    assert r["sample_tensor_bytes"] == 32 * 32 * (3 * 4 + 2 * 8 + 4)  # image (float), two long masks, float depth
    assert [t[2] for t in rows("scenes", r)] == [2000, None, None] and r["bandwidth_utilisation"] > 0


def test_committed_bench_runs_render_side_by_side_with_targets_and_whether_each_run_met_them(tmp_path):
    """docs/benchmarks.md's table comes from the committed runs' JSON: each run's value of each row, the target,
    and met per run (a time meets its target from below); a run's machine, commit and demo note above it."""
    from fmrecipes.report.bench import bench_block

    for run, (scenes, demo) in {"a": (2500.0, 700), "b": (1500.0, 1000)}.items():
        (tmp_path / run).mkdir()
        (tmp_path / run / "scenes.json").write_text(json.dumps(
            {"scenes_per_s": {"generate": scenes}, "target_scenes_per_s": 2000, "ratio_generate_vs_read_png": 2.0,
             "bandwidth_utilisation": 0.01}))
        (tmp_path / run / "machine.json").write_text(json.dumps(
            {"machine": f"host {run}", "commit": "0123456789abc", "date": "2026-12-02",
             "demo_row": ["make demo, six recipes' wall time (s)", demo, 900, "s"], "demo_note": "ran as usual"}))
    text = bench_block(tmp_path)
    assert "- `a`: host a; commit `0123456789`, 2026-12-02; the demo ran as usual" in text
    assert "| FashionScenes generation, scenes/s | 2500/s | 1500/s | >=2000/s | yes / NO |" in text
    assert "| make demo, six recipes' wall time (s) | 700s | 1000s | <=900s | yes / NO |" in text
    assert "No benchmark runs" in bench_block(tmp_path / "none")
    sys.path.insert(0, str(BENCH))
    from run_all import BENCHMARKS

    from fmrecipes.report.bench import ORDER
    assert tuple(BENCHMARKS) == ORDER  # the committed table lists what make bench runs, in its order
