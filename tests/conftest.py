import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def smoke_all(tmp_path_factory) -> Path:
    """One ``reproduce all --preset smoke`` per test run, shared by every test that reads a smoke reproduction
    (``OUT/<recipe>/summary.json``, replicates in ``OUT/<recipe>/seed<k>/``, the report). Read it; a test that
    changes files copies the recipe's directory first."""
    from fmrecipes.reproduce import reproduce

    out = tmp_path_factory.mktemp("smoke_all")
    assert reproduce("all", "smoke", out) == 0
    return out


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    """A small real corpus (the Lee news articles) as a user jsonl file."""
    from fmrecipes.data.corpora import news_documents

    path = tmp_path_factory.mktemp("corpus") / "news.jsonl"
    path.write_text("".join(json.dumps({"text": d.text}) + "\n" for d in news_documents()[:120]))
    return path


def tiny_lm_args(corpus: Path, out: Path, **extra) -> list[str]:
    """CLI overrides for a seconds-long LM run on ``corpus``."""
    opts = {
        "model.vocab_size": 300, "model.seq_len": 32, "model.n_layer": 2, "model.n_head": 2, "model.d_model": 32,
        "data.sources": f"[{corpus}]", "train.steps": 12, "train.batch_size": 8, "train.micro_batch_size": 4,
        "train.warmup_steps": 2, "train.log_every": 1, "train.eval_every": 6, "train.eval_batches": 2,
        "train.ckpt_every": 6, "run.progress": "false", "run.device": "cpu",
    }
    opts.update(extra)
    return ["--out", str(out), *[f"{k}={v}" for k, v in opts.items()]]


def run_cli(*args: str, timeout: int = 300, **kw) -> subprocess.CompletedProcess:
    """Run ``python -m fmrecipes`` in a subprocess."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "fmrecipes", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT, **kw)
