"""The catalogue of bad inputs (issue 20): every command, given each, exits with code 2 and one line
``fmrecipes...: error: ...`` naming what is wrong, and writes nothing: every file that was there (the case's own
files, the shared smoke reproduction, a finished LM run) is unchanged and no file is added."""

import hashlib
import io
import json
import re
import shutil
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import torch
from conftest import ROOT, tiny_lm_args

from fmrecipes.cli import main

CFG = ROOT / "configs"


def _digest(root: Path) -> dict[str, str]:
    root = Path(root)
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root] if root.is_file() else []
    return {str(p): hashlib.sha1(p.read_bytes()).hexdigest() for p in files}


def _quiet(argv: list[str]) -> int:
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        try:
            return main(argv)
        except SystemExit as exc:
            return int(exc.code or 0)


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory, corpus) -> Path:
    """A finished seconds-long ``lm train`` run."""
    out = tmp_path_factory.mktemp("lm") / "run"
    assert _quiet(["lm", "train", *tiny_lm_args(corpus, out)]) == 0
    return out


# ---- what a case writes before the command runs (into its own directory ``t``) ----

def write(name: str, text: str):
    return lambda t, ctx: (t / name).write_text(text)


def write_bytes(name: str, data: bytes):
    return lambda t, ctx: (t / name).write_bytes(data)


def mkdir(name: str):
    return lambda t, ctx: (t / name).mkdir()


def copy(key: str, rel: str, dst: str):
    return lambda t, ctx: shutil.copytree(ctx[key] / rel, t / dst)


def truncate(pattern: str, keep: int):
    """Cut the newest file matching ``pattern`` to ``keep`` bytes (a disk that filled up mid-write)."""
    def cut(t, ctx):
        path = sorted(t.glob(pattern))[-1]
        path.write_bytes(path.read_bytes()[:keep])
    return cut


def export(name: str, n: int = 3):
    return lambda t, ctx: _quiet(["data", "scenes", "export", "--n", str(n), "--no-progress", "--out", str(t / name)])


def train_lm(name: str, corpus_name: str | None = None):
    """A tiny LM run in ``t/name`` (on a copy of the test corpus at ``t/corpus_name`` if given)."""
    def run(t, ctx):
        corpus = ctx["corpus"]
        if corpus_name:
            corpus = t / corpus_name
            corpus.write_text(ctx["corpus"].read_text())
        assert _quiet(["lm", "train", *tiny_lm_args(corpus, t / name, **{"train.steps": 4})]) == 0
    return run


def then(*steps):
    return lambda t, ctx: [step(t, ctx) for step in steps]


def append(name: str, text: str):
    return lambda t, ctx: (t / name).write_text((t / name).read_text() + text)


def weights_only(name: str):
    """The smoke teacher's latest checkpoint without its tokenizer (a bare weights directory)."""
    def strip(t, ctx):
        ckpt = sorted((ctx["smoke"] / "miniplm/seed0/models/teacher/checkpoints").glob("step_*"))[-1]
        (t / name).mkdir()
        for f in ("config.json", "model.safetensors"):
            shutil.copy(ckpt / f, t / name / f)
    return strip


def foreign_captions(t, ctx):
    _quiet(["data", "scenes", "export", "--n", "3", "--no-progress", "--out", str(t / "e")])
    (t / "c.jsonl").write_text(json.dumps({"id": "elsewhere/0.png", "prompt": "a hat", "caption": "a red hat",
                                           "capped": False}) + "\n")


LM = "--out {t}/o model.vocab_size=300 model.seq_len=32 model.n_layer=2 model.n_head=2 model.d_model=32 " \
     "data.sources=[{corpus}] train.steps=4 train.batch_size=8 train.micro_batch_size=4 run.progress=false".split()
MP = ["--config", str(CFG / "miniplm/smoke.yaml"), "--out", "{t}/o"]
SSO = ["--config", str(CFG / "sso/smoke.yaml"), "--out", "{t}/o"]
TIPS = ["tips", "train", "--config", str(CFG / "tips/smoke.yaml"), "--out", "{t}/o"]
ALT = ["--config", str(CFG / "altogether/smoke.yaml"), "--out", "{t}/o"]
SIM = ["sim", "run", "--config", str(CFG / "sim/smoke.yaml"), "--out", "{t}/o"]
STAB = ["stability", "run", "--config", str(CFG / "stability/smoke.yaml"), "--out", "{t}/o"]
TEACHER = "{smoke}/miniplm/seed0/models/teacher"
POLICY = "{smoke}/sso/seed1/sft/policy"
CAPTION = ["altogether", "caption", "{smoke}/altogether/seed0"]

# (id, argv, what the case writes first or None, the pattern its one-line error must match)
CASES = [
    # lm train: corpus
    ("corpus-missing", ["lm", "train", *LM, "data.sources=[{t}/none.txt]"], None,
     r"corpus file .*none.txt does not exist"),
    ("corpus-empty", ["lm", "train", *LM, "data.sources=[{t}/e.txt]"], write("e.txt", "\n\n"),
     r"corpus .*e.txt is empty"),
    ("corpus-not-utf8", ["lm", "train", *LM, "data.sources=[{t}/b.txt]"], write_bytes("b.txt", b"ok \xff\xfe"),
     r"b.txt is not UTF-8"),
    ("corpus-null-text", ["lm", "train", *LM, "data.sources=[{t}/c.jsonl]"],
     write("c.jsonl", '{"text": "a b c"}\n{"text": null}\n'), r"c.jsonl line 2: 'text' is null, expected a string"),
    ("corpus-number-text", ["lm", "train", *LM, "data.sources=[{t}/c.jsonl]"], write("c.jsonl", '{"text": 3}\n'),
     r"line 1: 'text' is 3, expected a string"),
    ("corpus-no-text-key", ["lm", "train", *LM, "data.sources=[{t}/c.jsonl]"], write("c.jsonl", '{"body": "x"}\n'),
     r"line 1 has no key 'text'"),
    ("corpus-bad-json", ["lm", "train", *LM, "data.sources=[{t}/c.jsonl]"], write("c.jsonl", '{"text": "x"\n'),
     r"line 1 is not valid JSON"),
    ("corpus-json-not-object", ["lm", "train", *LM, "data.sources=[{t}/c.jsonl]"], write("c.jsonl", '[1, 2]\n'),
     r"line 1 is not a JSON object"),
    ("corpus-fake-parquet", ["lm", "train", *LM, "data.sources=[{t}/c.parquet]"], write("c.parquet", "not parquet"),
     r"c.parquet is not a readable parquet file"),
    ("corpus-empty-dir", ["lm", "train", *LM, "data.sources=[{t}/d]"], mkdir("d"), r"holds no .txt files"),
    ("corpus-unknown-domain", ["lm", "train", *LM, "data.sources=[bibel]"], None, r"corpus file bibel does not exist"),
    ("corpus-too-short", ["lm", "train", *LM, "data.sources=[{t}/s.txt]"], write("s.txt", "tiny"),
     r"fewer than one sequence"),
    ("corpus-changed-on-resume", ["lm", "train", "--out", "{t}/run", *LM[2:], "data.sources=[{t}/c.jsonl]"],
     then(train_lm("run", "c.jsonl"), append("c.jsonl", '{"text": "one more document"}\n')),
     r"holds token shards made from other inputs \(corpus .*c.jsonl changed\)"),
    # lm train: config
    ("config-typo", ["lm", "train", *LM, "train.lrr=1"], None, r"unknown config key 'train.lrr'"),
    ("config-wrong-type", ["lm", "train", *LM, "train.lr=abc"], None, r"train.lr='abc' has the wrong type"),
    ("config-unclosed-yaml", ["lm", "train", *LM, "data.sources=[bible"], None,
     r"override 'data.sources=\[bible': the value is not valid YAML"),
    ("config-no-equals", ["lm", "train", *LM, "train.lr"], None, r"override 'train.lr' is not of the form key=value"),
    ("config-negative-steps", ["lm", "train", *LM, "train.steps=-1"], None, r"train.steps=-1 must be positive"),
    ("config-batch-split", ["lm", "train", *LM, "train.batch_size=6"], None,
     r"train.batch_size=6 must be a multiple of train.micro_batch_size=4"),
    ("config-heads", ["lm", "train", *LM, "model.n_head=3"], None,
     r"model.d_model=32 must be divisible by model.n_head=3"),
    ("config-vocab-too-small", ["lm", "train", *LM, "model.vocab_size=10"], None,
     r"vocab_size=10 is below the byte-level tokenizer's 257"),
    ("config-precision", ["lm", "train", *LM, "run.precision=fp8"], None, r"run.precision='fp8' is not valid"),
    ("config-device-bogus", ["lm", "train", *LM, "run.device=bogus"], None, r"run.device='bogus' is not a device"),
    ("config-file-missing", ["lm", "train", "--config", "{t}/nope.yaml"], None,
     r"config file .*nope.yaml does not exist"),
    ("config-file-is-dir", ["lm", "train", "--config", "{t}"], None, r"is a directory; expected a YAML file"),
    ("config-file-list", ["lm", "train", "--config", "{t}/c.yaml"], write("c.yaml", "- 1\n"), r"must hold a mapping"),
    ("config-file-bad-yaml", ["lm", "train", "--config", "{t}/c.yaml"], write("c.yaml", "model: [\n"),
     r"is not valid YAML"),
    ("out-is-a-file", ["lm", "train", *LM[:1], "{t}/f", *LM[2:]], write("f", "precious"),
     r"output directory .*f exists and is a file"),
    ("resume-other-model", ["lm", "train", *tiny_lm_args(Path("{corpus}"), Path("{lm}")), "model.n_layer=3"], None,
     r"holds a run with a different 'model' config"),
    # lm eval / sample
    ("eval-missing", ["lm", "eval", "{t}/nope"], None, r"nope is not an lm run directory"),
    ("eval-half-written", ["lm", "eval", "{t}/half"], lambda t, ctx: (
        (t / "half" / "checkpoints" / "step_00000006").mkdir(parents=True),
        (t / "half" / "config.yaml").write_text((ctx["lm"] / "config.yaml").read_text())),
     r"half has no complete checkpoint yet"),
    ("eval-truncated-weights", ["lm", "eval", "{t}/run"], then(copy("lm", ".", "run"),
                                                               truncate("run/checkpoints/*/model.safetensors", 40)),
     r"model.safetensors cannot be read"),
    ("eval-device", ["lm", "eval", "{lm}", "--device", "bogus"], None, r"'bogus' is not a device"),
    ("sample-top-k", ["lm", "sample", "{lm}", "--top-k", "0"], None, r"argument --top-k: must be at least 1, got 0"),
    ("sample-tokens", ["lm", "sample", "{lm}", "--max-new-tokens", "-3"], None,
     r"--max-new-tokens: must be at least 1"),
    ("sample-temperature", ["lm", "sample", "{lm}", "--temperature", "-1"], None,
     r"--temperature: must be a finite number of at least 0"),
    # reproduce / report / data
    ("reproduce-recipe", ["reproduce", "stabilty", "--out", "{t}/o"], None, r"invalid choice: 'stabilty'"),
    ("reproduce-preset", ["reproduce", "sim", "--preset", "huge", "--out", "{t}/o"], None, r"--preset 'huge' is unknown"),
    ("reproduce-out-file", ["reproduce", "sim", "--preset", "smoke", "--out", "{t}/f"], write("f", "x"), r"is a file"),
    ("report-out-file", ["report", "--out", "{t}/f"], write("f", "x"), r"report --out .*f is not a directory"),
    ("report-out-missing", ["report", "--out", "{t}/nope"], None, r"report --out .*nope is not a directory"),
    ("report-out-empty", ["report", "--out", "{t}"], None, r"holds no recipe's output"),
    ("export-split", ["data", "scenes", "export", "--split", "bogus", "--out", "{t}/e"], None,
     r"invalid choice: 'bogus'"),
    ("export-n", ["data", "scenes", "export", "--n", "two", "--out", "{t}/e"], None, r"--n: 'two' is not an integer"),
    ("export-out-file", ["data", "scenes", "export", "--n", "2", "--out", "{t}/f"], write("f", "x"),
     r"exists and is not a FashionScenes export"),
    ("gallery-cols", ["data", "scenes", "gallery", "--cols", "0", "--out", "{t}/g.png"], None,
     r"--cols: must be at least 1"),
    ("gallery-out-dir", ["data", "scenes", "gallery", "--out", "{t}/d"], mkdir("d"), r"--out: .*d is a directory"),
    ("gallery-out-suffix", ["data", "scenes", "gallery", "--out", "{t}/g.xyz"], None,
     r"--out: .*g.xyz must end in .png"),
    ("scenes-config-key", ["data", "scenes", "export", "--out", "{t}/e", "data.sizee=3"], None,
     r"unknown config key 'data.sizee'"),
    # stability
    ("stability-variant", [*STAB, "variants=[baseline, qk_nrom]"], None, r"variants: unknown qk_nrom"),
    ("stability-no-seeds", [*STAB, "seeds=[]"], None, r"seeds must list at least one seed"),
    ("stability-repeated-seeds", [*STAB, "seeds=[1, 1]"], None, r"seeds=\[1, 1\] must be a non-empty list"),
    # miniplm
    ("score-no-model", ["miniplm", "score", *MP, "--model", "{t}/nope", "--name", "x"], None,
     r"checkpoint directory .*nope does not exist"),
    ("score-name-escapes", ["miniplm", "score", *MP, "--model", TEACHER, "--name", "../../x"], None,
     r"--name '../../x' must be a plain name"),
    ("score-model-without-tokenizer", ["miniplm", "score", *MP, "--model", "{t}/m", "--name", "x"],
     weights_only("m"),
     r"model .*m carries no tokenizer: pass --tokenizer corpus"),
    ("select-alpha", ["miniplm", "select", *MP, "--alpha", "1.5"], None, r"--alpha 1.5 must be in \(0, 1\]"),
    ("select-no-scores", ["miniplm", "select", *MP], None, r"score directory .*teacher is missing or incomplete"),
    ("select-truncated-scores", ["miniplm", "select", *MP], then(copy("smoke", "miniplm/seed0", "o"),
                                                                  truncate("o/scores/teacher/scores.npy", 100)),
     r"scores.npy is truncated or corrupt"),
    ("pretrain-student", ["miniplm", "pretrain", *MP, "--student", "nobody"], None, r"--student 'nobody' is not in"),
    ("pretrain-kd-teacher", ["miniplm", "pretrain", *MP, "--student", "s16", "--kd", "vanilla"], None,
     r"--kd vanilla needs --teacher"),
    ("pretrain-refined-missing", ["miniplm", "pretrain", *MP, "--student", "s16", "--data", "miniplm"], None,
     r"refined/miniplm/shard is missing or incomplete"),
    # sso
    ("generate-iteration", ["sso", "generate", *SSO, "--iteration", "0"], None, r"--iteration: must be at least 1"),
    ("generate-policy-missing", ["sso", "generate", *SSO, "--policy", "{t}/nope"], None, r"nope does not exist"),
    ("generate-prompts-unset", ["sso", "generate", *SSO, "task=prompts"], None, r"task=prompts needs prompts=FILE"),
    ("generate-principles-missing", ["sso", "generate", *SSO, "principles={t}/p.yaml"], None,
     r"principles file .*p.yaml does not exist"),
    ("generate-prompts-missing", ["sso", "generate", *SSO, "task=prompts", f"principles={CFG}/sso/principles.yaml",
                                  "prompts={t}/q.jsonl", "--policy", POLICY], None,
                                   r"prompts file .*q.jsonl does not exist"),
    ("generate-prompts-blank", ["sso", "generate", *SSO, "task=prompts", f"principles={CFG}/sso/principles.yaml",
                                "prompts={t}/q.txt", "--policy", POLICY], write("q.txt", "\n \n"),
                                 r"q.txt holds no queries"),
    ("reward-pairs-missing", ["sso", "reward-model", *SSO, "--pairs", "{t}/p.jsonl"], None,
     r"preference file .*p.jsonl does not exist"),
    ("reward-pairs-fields", ["sso", "reward-model", *SSO, "--pairs", "{t}/p.jsonl"], write("p.jsonl", '{"prompt": "a"}\n'),
     r"line 1 lacks chosen, rejected"),
    ("train-method", ["sso", "train", *SSO, "--method", "ppo"], None, r"invalid choice: 'ppo'"),
    # tips
    ("tips-n-local", [*TIPS, "ssl.n_local=-1"], None, r"ssl.n_local=-1 must be at least 1"),
    ("tips-variant", [*TIPS, "variant=bogus"], None, r"variant 'bogus' is unknown"),
    ("tips-probe-missing", ["tips", "probe", "{t}/o"], None, r"is not a tips run directory"),
    # altogether
    ("caption-no-run", ["altogether", "caption", "{t}/nope", "--index", "{t}/i.jsonl", "--out", "{t}/c.jsonl"], None,
     r"nope is not an altogether output directory"),
    ("caption-no-index", [*CAPTION, "--index", "{t}/i.jsonl", "--out", "{t}/c.jsonl"], None,
     r"image-text index .*i.jsonl does not exist"),
    ("caption-index-no-alt", [*CAPTION, "--index", "{t}/i.jsonl", "--out", "{t}/c.jsonl"],
     write("i.jsonl", '{"image": "x.png"}\n'), r"row 1 has no alt-text"),
    ("caption-fake-parquet", [*CAPTION, "--index", "{t}/i.parquet", "--out", "{t}/c.jsonl"], write("i.parquet", "x"),
     r"i.parquet is not a readable parquet file"),
    ("caption-out-dir", [*CAPTION, "--index", "{t}/e", "--out", "{t}/d"], then(export("e"), mkdir("d")),
     r"--out: .*d is a directory"),
    ("caption-system", [*CAPTION, "--index", "{t}/e", "--out", "{t}/c.jsonl", "--system", "bogus"], export("e"),
     r"bogus has no checkpoint"),
    ("caption-onto-other-captions", [*CAPTION, "--index", "{t}/e", "--out", "{t}/c.jsonl"], foreign_captions,
     r"c.jsonl row 1 is not image .* it holds captions of another index"),
    ("finetune-before-pretrain", ["altogether", "finetune", *ALT], None, r"run `fmrecipes altogether pretrain`"),
    # sim
    ("sim-sample-no-run", ["sim", "sample", "{t}/nope"], None, r"nope is not a sim replicate directory"),
    ("sim-sample-method", ["sim", "sample", "{smoke}/sim/seed0", "--method", "bogus", "--png", "{t}/s.png"], None,
     r"bogus holds no distillation checkpoint"),
    ("sim-sample-n", ["sim", "sample", "{smoke}/sim/seed0", "--n", "0"], None, r"--n: must be at least 1, got 0"),
    ("sim-sample-png-dir", ["sim", "sample", "{smoke}/sim/seed0", "--png", "{t}/d"], mkdir("d"),
     r"--png: .*d is a directory"),
    ("sim-methods", [*SIM, "methods=[bogus]"], None, r"bogus"),
]


def test_the_catalogue_is_large():
    assert len(CASES) >= 60 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("name,argv,prepare,pattern", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(name, argv, prepare, pattern, tmp_path, smoke_all, lm_run,
                                                         corpus, capsys, monkeypatch):
    if "cuda" in " ".join(argv) and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    monkeypatch.chdir(tmp_path)  # a default output path lands here, where it would be seen
    ctx = {"smoke": smoke_all, "lm": lm_run, "corpus": corpus}
    t = tmp_path / "case"
    t.mkdir()
    if prepare is not None:
        prepare(t, ctx)
    argv = [a.format(t=t, smoke=smoke_all, lm=lm_run, corpus=corpus) for a in argv]
    watched = [tmp_path] + [Path(a) for a in argv if a.startswith((str(smoke_all), str(lm_run)))]
    before = [_digest(p) for p in watched]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc_info:
        raise SystemExit(main(argv))
    err = capsys.readouterr().err.strip()
    assert exc_info.value.code == 2, err
    assert len(err.splitlines()) == 1, err
    assert re.match(r"fmrecipes[\w -]*: error: ", err) and re.search(pattern, err), err
    assert [_digest(p) for p in watched] == before, "a failing command changed or added files"
