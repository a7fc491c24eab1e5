"""Recipes under torchrun (2 gloo processes): ``reproduce`` writes one summary, from rank 0, equal to one process's,
and ``train.parallel=fsdp`` trains a MiniPLM student (and its teacher and reference), the SSO policy and the
stability runs with their output-norm monitor hooks."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from fmrecipes.core.runlock import LOCK

SMOKE = ROOT / "configs"
VOLATILE = ("wall_time_s", "machine", "preset")


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    cmd = [str(Path(sys.executable).with_name("torchrun")), "--nproc_per_node", "2", "-m", "fmrecipes", *args]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    errors = [line for line in res.stderr.splitlines()  # each rank's one-line error, or its exception's last line
              if "fmrecipes: " in line or re.match(r"\[rank\d+\]: \w+(Error|Exception)\b", line)]
    assert res.returncode == 0, "\n".join(errors) + "\n" + res.stderr[-3000:]
    return res


def _same(a: dict, b: dict) -> list[str]:
    return sorted(k for k in set(a) | set(b) if k not in VOLATILE and a.get(k) != b.get(k))


def test_reproduce_under_torchrun_writes_one_summary_equal_to_one_process(smoke_all, tmp_path):
    _torchrun("reproduce", "miniplm", "--preset", "smoke", "--out", str(tmp_path))
    out = tmp_path / "miniplm"
    two = json.loads((out / "summary.json").read_text())
    assert _same(json.loads((smoke_all / "miniplm" / "summary.json").read_text()), two) == []
    assert two["preset"] == "smoke" and not (out / LOCK).exists()
    assert not [p for p in out.rglob("*") if p.name.startswith(".") and p.name != "tokenizer"]  # no temporaries


def test_fsdp_trains_miniplm_students_the_sso_policy_and_monitored_stability_runs(smoke_all, tmp_path):
    fsdp = [f"{k}.parallel=fsdp" for k in ("teacher_train", "reference_train", "student_train")]
    _torchrun("miniplm", "run", "--config", str(SMOKE / "miniplm" / "smoke.yaml"), "--out", str(tmp_path / "m"),
              *fsdp)
    sharded = json.loads((tmp_path / "m" / "summary.json").read_text())
    assert _same(json.loads((smoke_all / "miniplm" / "summary.json").read_text()), sharded) == []

    _torchrun("sso", "run", "--config", str(SMOKE / "sso" / "smoke.yaml"), "--out", str(tmp_path / "s"), "seeds=[0]",
              "iterations=1", "sft_train.parallel=fsdp", "train.parallel=fsdp", "reward.train.parallel=fsdp")
    policy = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert 0 <= policy["gold.sso.final"] <= 1 and "rm_acc.sso_pairs" in policy

    _torchrun("stability", "run", "--config", str(SMOKE / "stability" / "smoke.yaml"), "--out", str(tmp_path / "t"),
              "variants=[baseline]", "train.parallel=fsdp")
    run = Path("seed0/runs/baseline/lr_0.003/seed_0/metrics.jsonl")
    first = [json.loads(line) for line in (tmp_path / "t" / run).read_text().splitlines()][0]
    one = [json.loads(line) for line in (smoke_all / "stability" / run).read_text().splitlines()][0]
    assert first["step"] == one["step"] == 1
    for key in ("out_rms.qkv.max", "out_rms.fc2.max", "max_attn_logit.max"):  # the hooks saw the sharded blocks
        assert first[key] == pytest.approx(one[key], rel=0.05), key  # bf16 autocast: rounding differs
