"""Safe on shared machines and clusters: a crafted checkpoint runs no code, one run per output directory,
preemption signals end in a checkpoint and a resume, a full disk or an unwritable directory is one line, and a
failed resume keeps the config that describes the checkpoints."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import ROOT, run_cli, tiny_lm_args
from safetensors.torch import load_file

from fmrecipes.core import runlock
from fmrecipes.core.checkpoint import latest_checkpoint
from fmrecipes.core.train import StepHooks, TrainConfig, train
from fmrecipes.errors import FmError, Preempted, UnsafeFile

sys.path.insert(0, str(Path(__file__).parent))
from test_train import Toy, _toy_model  # noqa: E402

CFG = TrainConfig(steps=8, batch_size=4, micro_batch_size=4, lr=1e-2, warmup_steps=0, ckpt_every=4, eval_every=100)


class _Touch:
    """An object whose unpickling creates a file: what a malicious ``trainer_state.pt`` would do."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_a_crafted_trainer_state_is_refused_without_running_it(tmp_path):
    train(_toy_model(), Toy(), None, CFG, tmp_path / "run")
    ckpt = latest_checkpoint(tmp_path / "run")
    marker = tmp_path / "pwned"
    state = torch.load(ckpt / "trainer_state.pt", weights_only=True)
    torch.save({**state, "payload": _Touch(marker)}, ckpt / "trainer_state.pt")
    with pytest.raises(UnsafeFile, match=r"trainer_state.pt holds objects other than tensors.*refused") as err:
        train(_toy_model(), Toy(), None, TrainConfig(**{**CFG.__dict__, "steps": 12}), tmp_path / "run")
    assert "\n" not in str(err.value)
    assert not marker.exists()


def test_a_second_run_into_the_same_directory_is_refused_and_a_stale_lock_taken_over(tmp_path, capsys):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        out = tmp_path / "out"
        out.mkdir()
        (out / runlock.LOCK).write_text(json.dumps({"pid": holder.pid, "host": os.uname().nodename,
                                                    "command": "fmrecipes lm train"}))
        with pytest.raises(FmError, match=rf"in use by process {holder.pid} on .*fmrecipes lm train"):
            with runlock.run_lock(out):
                pass
        with runlock.run_lock(out, is_main=False):  # a torchrun worker other than rank 0 takes no lock
            pass
    finally:
        holder.kill()
        holder.wait()
    with runlock.run_lock(out):
        assert json.loads((out / runlock.LOCK).read_text())["pid"] == os.getpid()
    assert f"taking over the lock of process {holder.pid}" in capsys.readouterr().err
    assert not (out / runlock.LOCK).exists()  # released


def test_two_lm_trains_into_one_directory(tmp_path, corpus):
    args = tiny_lm_args(corpus, tmp_path / "run", **{"train.steps": 400, "train.ckpt_every": 400})
    first = subprocess.Popen([sys.executable, "-m", "fmrecipes", "lm", "train", *args], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        lock = tmp_path / "run" / runlock.LOCK
        deadline = time.time() + 120
        while not lock.exists() and time.time() < deadline:
            time.sleep(0.05)
        second = run_cli("lm", "train", *args)
        assert second.returncode == 2
        assert f"error: output directory {tmp_path / 'run'} is in use by process {first.pid}" in second.stderr
        assert second.stderr.count("\n") == 1
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()


class _Signal(StepHooks):
    """Sends this process ``sig`` during step ``at`` (as a scheduler would)."""

    def __init__(self, sig, at):
        self.sig, self.at = sig, at

    def before_step(self, step, model):
        if step == self.at:
            os.kill(os.getpid(), self.sig)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1], ids=["SIGTERM", "SIGUSR1"])
def test_a_preemption_signal_finishes_the_step_checkpoints_and_resumes_exactly(tmp_path, sig):
    whole = _toy_model()
    train(whole, Toy(), None, CFG, tmp_path / "whole")
    with pytest.raises(Preempted, match=rf"stopped by {sig.name} after step 3; checkpoint .*step_00000003") as err:
        train(_toy_model(), Toy(), None, CFG, tmp_path / "cut", hooks=_Signal(sig, 3))
    assert err.value.exit_code == 75 and latest_checkpoint(tmp_path / "cut").name == "step_00000003"
    assert signal.getsignal(sig) is signal.SIG_DFL or callable(signal.getsignal(sig))  # the handler is put back
    resumed = _toy_model()
    assert train(resumed, Toy(), None, CFG, tmp_path / "cut").resumed_from == 3
    for a, b in zip(whole.parameters(), resumed.parameters()):
        assert torch.equal(a, b)


def test_sigterm_to_lm_train_exits_75_with_a_checkpoint_and_resumes_to_the_same_weights(tmp_path, corpus):
    common = {"train.steps": 60, "train.ckpt_every": 25, "model.d_model": 64, "model.seq_len": 64}
    ref = run_cli("lm", "train", *tiny_lm_args(corpus, tmp_path / "ref", **common))
    assert ref.returncode == 0, ref.stderr
    args = tiny_lm_args(corpus, tmp_path / "cut", **common)
    proc = subprocess.Popen([sys.executable, "-m", "fmrecipes", "lm", "train", *args], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first = tmp_path / "cut" / "checkpoints" / "step_00000025"
    deadline = time.time() + 120
    while not first.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 75, err
    assert "stopped by SIGTERM after step" in err and "run the same command again to resume" in err
    stopped = latest_checkpoint(tmp_path / "cut").name
    assert stopped not in ("step_00000025", "step_00000060"), "the signal's step wrote no checkpoint of its own"
    resumed = run_cli("lm", "train", *args)
    assert resumed.returncode == 0, resumed.stderr
    a = load_file(str(latest_checkpoint(tmp_path / "ref") / "model.safetensors"))
    b = load_file(str(latest_checkpoint(tmp_path / "cut") / "model.safetensors"))
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k


def test_a_full_disk_while_checkpointing_is_one_line_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    train(_toy_model(), Toy(), None, CFG, tmp_path)
    real_save = torch.save

    def full(obj, f, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(FmError, match=r"cannot write .*step_00000012: No space left on device; what was written "
                                      r"before is intact") as err:
        train(_toy_model(), Toy(), None, TrainConfig(**{**CFG.__dict__, "steps": 12}), tmp_path)
    assert "\n" not in str(err.value)
    monkeypatch.setattr(torch, "save", real_save)
    assert latest_checkpoint(tmp_path).name == "step_00000008"
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")]  # no half-written dir
    assert train(_toy_model(), Toy(), None, TrainConfig(**{**CFG.__dict__, "steps": 12}), tmp_path).resumed_from == 8


def test_a_full_disk_while_writing_a_summary_keeps_the_old_one(tmp_path, monkeypatch):
    from fmrecipes.core.fileio import atomic_write_json

    path = tmp_path / "summary.json"
    atomic_write_json(path, {"old": 1})

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(FmError, match="cannot write .*summary.json: No space left on device"):
        atomic_write_json(path, {"new": 2})
    assert json.loads(path.read_text()) == {"old": 1} and [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_an_output_directory_that_cannot_be_created_is_one_line(tmp_path, corpus):
    res = run_cli("lm", "train", *tiny_lm_args(corpus, Path("/sys/fmrecipes-out")))
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert "error: output directory /sys/fmrecipes-out cannot be created" in res.stderr


def test_a_resume_that_fails_keeps_the_config_of_its_checkpoints(tmp_path, corpus):
    args = tiny_lm_args(corpus, tmp_path / "run", **{"train.steps": 20, "train.ckpt_every": 10})
    assert run_cli("lm", "train", *args).returncode == 0
    before = (tmp_path / "run" / "config.yaml").read_text()
    bad = run_cli("lm", "train", *[a for a in args if not a.startswith("train.steps=")], "train.steps=40",
                  "train.lr=1e6")
    assert bad.returncode == 2 and "training diverged" in bad.stderr
    assert (tmp_path / "run" / "config.yaml").read_text() == before
    good = run_cli("lm", "train", *[a for a in args if not a.startswith("train.steps=")], "train.steps=30")
    assert good.returncode == 0 and "steps: 30" in (tmp_path / "run" / "config.yaml").read_text()
