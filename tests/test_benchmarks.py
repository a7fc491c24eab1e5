"""The benchmarks this issue measures with run end to end at toy sizes (no timing is asserted): their JSON holds
what ``make bench`` (benchmarks/run_all.py) tabulates, and the scores they compare agree."""

import json
import subprocess
import sys

from conftest import ROOT

BENCH = ROOT / "benchmarks"
TINY = ["--n-layer", "1", "--n-head", "2", "--vocab", "128", "--seq-len", "16", "--batch", "4", "--rounds", "1"]


def _run(name: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, str(BENCH / f"{name}.py"), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout[done.stdout.index("{"):])


def test_scoring_and_training_benchmarks_report_what_make_bench_prints():
    sys.path.insert(0, str(BENCH))
    from run_all import rows

    score = _run("miniplm_score", *TINY, "--d-model", "32", "--instances", "16", "--profile")
    assert score["eos_positions_skipped"] > 0  # the plain loop's EOS mask is exercised
    assert max(score["max_abs_score_difference"].values()) < 1e-5
    assert any("mm" in line for line in score["profile_one_batch"]["plain_hf_loop"])
    train = _run("lm_throughput", *TINY, "--d-models", "32", "64", "--steps", "1")
    assert [s["d_model"] for s in train["sizes"]] == [32, 64]
    table = rows("miniplm_score", score) + rows("lm_throughput", train)
    assert [t[2] for t in table] == [None, 1.5, 1.2, 0.95, 1.2, 0.95]
    assert all(v > 0 for _, v, _, _ in table)
