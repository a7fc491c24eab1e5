import dataclasses
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import ROOT, run_cli, tiny_lm_args
from safetensors.torch import load_file

from fmrecipes.core import dist
from fmrecipes.core.checkpoint import latest_checkpoint, load_model, save_checkpoint
from fmrecipes.core.gpt import GPT, GPTConfig
from fmrecipes.core.train import StepHooks, TrainConfig, lr_at, param_groups, train
from fmrecipes.errors import FmError, TrainingDiverged


def test_lr_schedule_hand_values():
    cfg = TrainConfig(lr=1.0, warmup_steps=10, steps=110, min_lr_ratio=0.1)
    assert lr_at(5, cfg) == pytest.approx(0.5)
    assert lr_at(10, cfg) == pytest.approx(1.0)
    assert lr_at(60, cfg) == pytest.approx(0.1 + 0.9 * 0.5)  # half-way through the cosine
    assert lr_at(110, cfg) == pytest.approx(0.1)


def test_param_groups_decay_only_matrices():
    model = GPT(GPTConfig(vocab_size=20, seq_len=8, n_layer=1, n_head=2, d_model=8, bias=True))
    decay, no_decay = param_groups(model, 0.1)
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() < 2 for p in no_decay["params"])
    n = sum(p.numel() for g in (decay, no_decay) for p in g["params"])
    assert n == model.num_params()  # the tied embedding is counted once


class Toy:
    """A tiny learnable dataset: rows count up from a random start, modulo the vocabulary."""

    def __init__(self, n=32, L=8, vocab=20):
        g = torch.Generator().manual_seed(0)
        self.rows = (torch.randint(0, vocab, (n, 1), generator=g) + torch.arange(L + 1)) % vocab

    def __len__(self):
        return len(self.rows)

    def batch(self, idx):
        r = self.rows[torch.as_tensor(list(idx))]
        return r[:, :-1], r[:, 1:]


def _toy_model():
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=20, seq_len=8, n_layer=1, n_head=2, d_model=16))


def test_loss_decreases_and_checkpoints_written(tmp_path):
    cfg = TrainConfig(steps=30, batch_size=8, micro_batch_size=4, lr=1e-2, warmup_steps=2, eval_every=10,
                      ckpt_every=10, log_every=1)
    result = train(_toy_model(), Toy(), Toy(), cfg, tmp_path, tokens_per_example=8)
    rows = [json.loads(l) for l in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["loss"] < rows[0]["loss"] - 0.3
    assert result.checkpoint == tmp_path / "checkpoints" / "step_00000030"
    assert len(list((tmp_path / "checkpoints").iterdir())) == 2  # keep_checkpoints
    assert (tmp_path / "loss_curve.png").stat().st_size > 1000


def test_accumulation_matches_one_big_batch(tmp_path):
    common = dict(steps=5, batch_size=8, lr=1e-2, warmup_steps=0, log_every=1,
                  eval_every=100, ckpt_every=100)
    a = _toy_model()
    train(a, Toy(), None, TrainConfig(micro_batch_size=8, **common), tmp_path / "a")
    b = _toy_model()
    train(b, Toy(), None, TrainConfig(micro_batch_size=2, **common), tmp_path / "b")
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.allclose(pa, pb, atol=1e-5)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    cfg = TrainConfig(steps=30, batch_size=4, micro_batch_size=4, lr=1e-3, warmup_steps=0, ckpt_every=5,
                      eval_every=100)
    model = _toy_model()

    class Poison(StepHooks):
        def after_step(self, step, m):
            if step == 12:  # corrupt a weight after step 12's update: step 13's loss is NaN
                with torch.no_grad():
                    m.blocks[0].mlp.fc1.weight[0, 0] = float("nan")
            return {}

    with pytest.raises(TrainingDiverged, match=r"loss is nan at step 13; last good checkpoint kept at .*step_00000010"):
        train(model, Toy(), None, cfg, tmp_path, hooks=Poison())
    good = latest_checkpoint(tmp_path)
    assert good.name == "step_00000010"
    assert all(torch.isfinite(t).all() for t in load_file(str(good / "model.safetensors")).values())


class _Kill(StepHooks):
    """Stops training after step ``at`` as a kill would (the step's checkpoint, if due, is written)."""

    def __init__(self, at: int):
        self.at = at

    def before_step(self, step, m):
        if step == self.at + 1:
            raise KeyboardInterrupt


@pytest.mark.parametrize("damage", ["model.safetensors", "trainer_state.pt"])
def test_resume_falls_back_past_a_damaged_latest_checkpoint(tmp_path, capsys, damage):
    """A latest checkpoint cut short (a half-written weights file, an empty trainer state) is skipped with a
    warning; training resumes from the one before and ends where an uninterrupted run ends."""
    cfg = TrainConfig(steps=12, batch_size=4, micro_batch_size=4, lr=1e-2, warmup_steps=0, ckpt_every=4,
                      keep_checkpoints=3, eval_every=100)
    whole = _toy_model()
    train(whole, Toy(), None, cfg, tmp_path / "whole")
    with pytest.raises(KeyboardInterrupt):
        train(_toy_model(), Toy(), None, cfg, tmp_path / "cut", hooks=_Kill(9))
    latest = latest_checkpoint(tmp_path / "cut")
    assert latest.name == "step_00000008"
    f = latest / damage
    f.write_bytes(f.read_bytes()[:40] if damage.endswith("safetensors") else b"")
    capsys.readouterr()
    resumed = _toy_model()
    result = train(resumed, Toy(), None, cfg, tmp_path / "cut")
    err = capsys.readouterr().err
    assert re.search(rf"warning: checkpoint .*step_00000008.*{damage}.* resuming from the checkpoint before it", err), err
    assert result.resumed_from == 4
    for a, b in zip(whole.parameters(), resumed.parameters()):
        assert torch.equal(a, b)


def test_every_checkpoint_damaged_is_a_clear_error(tmp_path):
    cfg = TrainConfig(steps=4, batch_size=4, micro_batch_size=4, warmup_steps=0, ckpt_every=2, eval_every=100)
    train(_toy_model(), Toy(), None, cfg, tmp_path)
    for ckpt in (tmp_path / "checkpoints").iterdir():
        (ckpt / "trainer_state.pt").write_bytes(b"")
    with pytest.raises(FmError, match=r"every checkpoint under .*checkpoints is damaged"):
        train(_toy_model(), Toy(), None, dataclasses.replace(cfg, steps=6), tmp_path)


def test_checkpoint_roundtrip_and_bad_dirs(tmp_path):
    model = _toy_model()
    opt = torch.optim.AdamW(model.parameters())
    path = save_checkpoint(tmp_path, 3, model, opt, {})
    back = load_model(path)
    x = torch.randint(0, 20, (2, 8))
    assert torch.equal(back(x), model(x))
    with pytest.raises(FmError, match="does not exist"):
        load_model(tmp_path / "nope")
    half = tmp_path / "half"
    half.mkdir()
    (half / "config.json").write_text((path / "config.json").read_text())
    with pytest.raises(FmError, match=r"incomplete or half-written \(missing model.safetensors\)"):
        load_model(half)
    (half / "model.safetensors").write_bytes((path / "model.safetensors").read_bytes()[:100])
    with pytest.raises(FmError, match="cannot be read"):
        load_model(half)


def test_one_checkpoint_api_for_every_model_kind(tmp_path):
    from fmrecipes.core.checkpoint import save_model
    from fmrecipes.core.vit import ViT, ViTConfig

    torch.manual_seed(0)
    vit = ViT(ViTConfig(image_size=16, patch_size=4, width=24, depth=1, heads=2, n_cls=2)).eval()
    back = load_model(save_model(vit, tmp_path / "vit"), expect=ViT).eval()
    images = torch.rand(2, 3, 16, 16)
    assert type(back) is ViT and back.cfg == vit.cfg and torch.equal(back(images).cls, vit(images).cls)
    save_model(_toy_model(), tmp_path / "gpt")
    with pytest.raises(FmError, match="holds a GPT, not a ViT"):
        load_model(tmp_path / "gpt", expect=ViT)
    head = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Tanh())  # a module rebuilt in code
    save_model(head, tmp_path / "head")
    with pytest.raises(FmError, match="rebuilt in code"):
        load_model(tmp_path / "head")
    fresh = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Tanh())
    assert load_model(tmp_path / "head", into=fresh) is fresh
    assert torch.equal(fresh[0].weight, head[0].weight)
    with pytest.raises(FmError, match="does not match the model"):
        load_model(tmp_path / "head", into=torch.nn.Linear(3, 3))
    assert not list(tmp_path.glob(".tmp-*"))  # written atomically


def test_hidden_tmp_checkpoint_is_ignored(tmp_path):
    (tmp_path / "checkpoints" / ".tmp-step_00000050-1").mkdir(parents=True)
    (tmp_path / "checkpoints" / "step_00000040").mkdir()  # no trainer_state.pt: half-written
    assert latest_checkpoint(tmp_path) is None


def _weights(run: Path) -> dict:
    return load_file(str(latest_checkpoint(run) / "model.safetensors"))


def _killed_once(cmd: list[str], target: Path, timeout: float) -> subprocess.Popen:
    """Run ``cmd`` and SIGKILL its whole process group (torchrun's workers too) once ``target`` exists."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + timeout
    while not target.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return proc


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path, corpus):
    args = tiny_lm_args(corpus, tmp_path / "ref", **{"train.steps": 60, "train.ckpt_every": 10,
                                                     "model.d_model": 64, "model.seq_len": 64})
    ref = run_cli("lm", "train", *args)
    assert ref.returncode == 0, ref.stderr
    killed_args = [str(tmp_path / "killed") if a == str(tmp_path / "ref") else a for a in args]
    proc = _killed_once([sys.executable, "-m", "fmrecipes", "lm", "train", *killed_args],
                        tmp_path / "killed" / "checkpoints" / "step_00000020", 120)
    assert proc.returncode == -signal.SIGKILL, "training finished before it could be killed"
    assert latest_checkpoint(tmp_path / "killed").name != "step_00000060"
    resumed = run_cli("lm", "train", *killed_args)
    assert resumed.returncode == 0, resumed.stderr
    a, b = _weights(tmp_path / "ref"), _weights(tmp_path / "killed")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k
    ref_rows = [json.loads(l) for l in (tmp_path / "ref" / "metrics.jsonl").read_text().splitlines()]
    res_rows = [json.loads(l) for l in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in ref_rows] == [r["step"] for r in res_rows]
    assert [r["loss"] for r in ref_rows] == pytest.approx([r["loss"] for r in res_rows], abs=1e-6)


def test_ddp_two_processes_match_one(tmp_path, corpus):
    one = run_cli("lm", "train", *tiny_lm_args(corpus, tmp_path / "one"))
    assert one.returncode == 0, one.stderr
    torchrun = Path(sys.executable).with_name("torchrun")
    two = subprocess.run([str(torchrun), "--nproc_per_node", "2", "-m", "fmrecipes", "lm", "train",
                          *tiny_lm_args(corpus, tmp_path / "two")], capture_output=True, text=True, cwd=ROOT,
                         timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    r1 = [json.loads(l) for l in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    r2 = [json.loads(l) for l in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    assert len(r1) == len(r2) == 12
    for a, b in zip(r1, r2):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-4)
        if "val_loss" in a:
            assert a["val_loss"] == pytest.approx(b["val_loss"], abs=1e-4)
    assert not math.isclose(r1[0]["loss"], r1[-1]["loss"])


def test_tensorboard_is_optional_with_a_clear_error(tmp_path):
    cfg = TrainConfig(steps=2, batch_size=4, micro_batch_size=4)
    env = dist.setup(dist.RunConfig(device="cpu", progress=False, tensorboard=True))
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        with pytest.raises(FmError, match=r"run.tensorboard=true needs the tensorboard package"):
            train(_toy_model(), Toy(), None, cfg, tmp_path, env)
    else:
        train(_toy_model(), Toy(), None, cfg, tmp_path, env)
        assert list((tmp_path / "tensorboard").glob("events.*"))


def _torchrun(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("torchrun")), "--nproc_per_node", "2", "-m", "fmrecipes", *args]


def _model_state(checkpoint: Path) -> dict:
    return load_model(checkpoint).state_dict()


def test_fsdp_two_processes_match_one_and_resume_after_a_kill(tmp_path, corpus):
    """``train.parallel=fsdp`` (FSDP2, gloo): 2 sharded processes train as one process does (losses and weights to
    1e-4, with gradient accumulation), checkpoints are whole (they load and evaluate like any other), and a run
    killed with SIGKILL resumes under torchrun to the uninterrupted run's weights."""
    extra = {"train.steps": 12, "train.micro_batch_size": 2, "train.ckpt_every": 4, "train.keep_checkpoints": 3}
    one = run_cli("lm", "train", *tiny_lm_args(corpus, tmp_path / "one", **extra))
    assert one.returncode == 0, one.stderr
    sharded = tiny_lm_args(corpus, tmp_path / "fsdp", **extra, **{"train.parallel": "fsdp"})
    two = subprocess.run(_torchrun("lm", "train", *sharded), capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    rows = [[json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
            for run in ("one", "fsdp")]
    assert [r["step"] for r in rows[0]] == [r["step"] for r in rows[1]]
    for a, b in zip(*rows):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-4)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4)
    final = [_model_state(latest_checkpoint(tmp_path / run)) for run in ("one", "fsdp")]
    assert max((final[0][k] - final[1][k]).abs().max().item() for k in final[0]) < 1e-4
    assert run_cli("lm", "eval", str(tmp_path / "fsdp")).returncode == 0

    killed = [str(tmp_path / "killed") if a == str(tmp_path / "fsdp") else a for a in sharded]
    _killed_once(_torchrun("lm", "train", *killed), tmp_path / "killed" / "checkpoints" / "step_00000004", 240)
    assert latest_checkpoint(tmp_path / "killed").name != "step_00000012", "training finished before the kill"
    resumed = subprocess.run(_torchrun("lm", "train", *killed), capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    again = _model_state(latest_checkpoint(tmp_path / "killed"))
    assert max((again[k] - final[1][k]).abs().max().item() for k in again) < 1e-6
    # the run goes on in one process from its sharded checkpoint, then sharded again from a replicated one
    on = run_cli("lm", "train", *[a if a != "train.parallel=fsdp" else "train.parallel=ddp" for a in killed],
                 "train.steps=16")
    assert on.returncode == 0, on.stderr
    back = subprocess.run(_torchrun("lm", "train", *killed, "train.steps=20"), capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert back.returncode == 0, back.stderr[-3000:]
    assert latest_checkpoint(tmp_path / "killed").name == "step_00000020"


def test_compiled_training_matches_eager(tmp_path):
    """``run.compile=true``: the loss and the model's forward/backward go through torch.compile (Inductor, a C++
    compiler on this machine): the same losses and weights as eager training, and the checkpoint loads as usual."""
    common = dict(steps=4, batch_size=8, micro_batch_size=4, lr=1e-2, warmup_steps=0, log_every=1,
                  eval_every=4, ckpt_every=4)
    eager, compiled = _toy_model(), _toy_model()
    train(eager, Toy(), Toy(), TrainConfig(**common), tmp_path / "e",
          env=dist.DistEnv(run=dist.RunConfig(progress=False, compile=False)))
    result = train(compiled, Toy(), Toy(), TrainConfig(**common), tmp_path / "c",
                   env=dist.DistEnv(run=dist.RunConfig(progress=False, compile=True)))
    rows = [[json.loads(line) for line in (tmp_path / d / "metrics.jsonl").read_text().splitlines()] for d in "ec"]
    losses = [[r["loss"] for r in rs if "loss" in r] for rs in rows]
    assert len(losses[0]) == 4 and losses[0] == pytest.approx(losses[1], abs=1e-4)
    for pa, pb in zip(eager.parameters(), compiled.parameters()):
        assert torch.allclose(pa, pb, atol=1e-4)
    assert isinstance(load_model(result.checkpoint), GPT)


def test_a_library_call_without_an_environment_runs_alone(tmp_path, monkeypatch):
    """``train(..., env=None)`` under a torchrun-like environment joins no process group: one process, said so."""
    import torch.distributed

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    env = dist.single_process(dist.RunConfig(progress=False))
    assert env.world_size == 1 and env.is_main and not env.run.progress
    train(_toy_model(), Toy(), None, TrainConfig(steps=2, batch_size=4, micro_batch_size=4), tmp_path)
    assert not torch.distributed.is_initialized()
