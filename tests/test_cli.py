"""Bad input: each case is a one-line error, exit code 2, and nothing already written changes."""

import hashlib
import re
from pathlib import Path

import pytest
import torch

from conftest import ROOT, tiny_lm_args
from fmrecipes.cli import main
from fmrecipes.recipes import RECIPES


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, corpus):
    out = tmp_path_factory.mktemp("run") / "lm"
    assert main(["lm", "train", *tiny_lm_args(corpus, out)]) == 0
    return out


def _fails_with(capsys, argv, pattern):
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc_info:
        raise SystemExit(main(argv))
    assert exc_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert re.search(pattern, err), err


def test_help_lists_recipes_and_verbs(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for word in ("stability", "miniplm", "sso", "tips", "altogether", "sim", "lm", "reproduce", "report"):
        assert word in out
    for verb in (["lm", "train"], ["lm", "eval"], ["lm", "sample"], ["reproduce"], ["report"], *[[r, "run"] for r in RECIPES]):
        with pytest.raises(SystemExit) as e:
            main([*verb, "--help"])
        assert e.value.code == 0


def test_missing_corpus_file(capsys, tmp_path, corpus):
    _fails_with(capsys, ["lm", "train", *tiny_lm_args(corpus, tmp_path / "o"), f"data.sources=[{tmp_path}/none.txt]"],
                r"error: corpus file .*none.txt does not exist")


def test_empty_corpus(capsys, tmp_path, corpus):
    (tmp_path / "e.txt").write_text("\n\n")
    _fails_with(capsys, ["lm", "train", *tiny_lm_args(corpus, tmp_path / "o"), f"data.sources=[{tmp_path}/e.txt]"],
                r"error: corpus .*e.txt is empty")


def test_corpus_shorter_than_one_sequence(capsys, tmp_path, corpus):
    (tmp_path / "s.txt").write_text("just a few words " * 20)
    _fails_with(capsys, ["lm", "train", *tiny_lm_args(corpus, tmp_path / "o"), f"data.sources=[{tmp_path}/s.txt]",
                         "model.seq_len=64"],
                r"error: corpus .*s.txt \(validation split\) has \d+ tokens, fewer than one sequence of seq_len\+1=65")


def test_non_utf8_corpus(capsys, tmp_path, corpus):
    (tmp_path / "b.txt").write_bytes("caf\xe9".encode("latin-1"))
    _fails_with(capsys, ["lm", "train", *tiny_lm_args(corpus, tmp_path / "o"), f"data.sources=[{tmp_path}/b.txt]"],
                r"error: corpus file .*b.txt is not UTF-8 text")


def test_config_typo(capsys, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train:\n  stpes: 3\n")
    _fails_with(capsys, ["lm", "train", "--config", str(cfg)],
                r"error: unknown config key 'train.stpes'; valid keys here: .*steps.* \(in .*c.yaml\)")
    _fails_with(capsys, ["lm", "train", "model.n_layer=two"], r"error: model.n_layer='two' has the wrong type")


def test_unknown_preset(capsys, tmp_path):
    _fails_with(capsys, ["reproduce", "all", "--preset", "huge", "--out", str(tmp_path)],
                r"error: argument --preset: invalid choice: 'huge'")


def test_output_directory_is_a_file(capsys, tmp_path, corpus):
    f = tmp_path / "taken"
    f.write_text("precious")
    _fails_with(capsys, ["lm", "train", *tiny_lm_args(corpus, f)], r"error: output directory .*taken exists and is a file")
    _fails_with(capsys, ["reproduce", "all", "--preset", "smoke", "--out", str(f)], r"exists and is a file")
    assert f.read_text() == "precious"


def test_eval_of_missing_or_half_written_run(capsys, tmp_path, finished_run):
    _fails_with(capsys, ["lm", "eval", str(tmp_path / "nope")], r"error: .*nope is not an lm run directory")
    half = tmp_path / "half"
    half.mkdir()
    (half / "config.yaml").write_text((finished_run / "config.yaml").read_text())
    (half / "checkpoints" / "step_00000006").mkdir(parents=True)  # killed mid-save: no files
    _fails_with(capsys, ["lm", "eval", str(half)], r"error: run directory .*half has no complete checkpoint yet")


def test_bad_input_leaves_a_finished_run_untouched(capsys, tmp_path, finished_run, corpus):
    before = _digest(finished_run)
    _fails_with(capsys, ["lm", "train", *tiny_lm_args(corpus, finished_run), "model.n_layer=3"],
                r"holds a run with a different 'model' config")
    _fails_with(capsys, ["lm", "train", *tiny_lm_args(corpus, finished_run), "train.lrr=1"],
                r"unknown config key 'train.lrr'")
    assert _digest(finished_run) == before


def test_rerun_of_finished_run_is_a_noop_and_eval_sample_work(capsys, finished_run, corpus):
    before = _digest(finished_run / "checkpoints")
    assert main(["lm", "train", *tiny_lm_args(corpus, finished_run)]) == 0
    assert _digest(finished_run / "checkpoints") == before
    assert main(["lm", "eval", str(finished_run)]) == 0
    assert '"val_ppl"' in capsys.readouterr().out
    assert main(["lm", "sample", str(finished_run), "--prompt", "The", "--max-new-tokens", "4"]) == 0
    assert capsys.readouterr().out.startswith("The")


def test_stability_run_bad_variant(capsys, tmp_path):
    _fails_with(capsys, ["stability", "run", "--out", str(tmp_path), "variants=[baseline, qk_nrom]"],
                r"error: variants: unknown qk_nrom; choose from baseline, qk_norm, ")


@pytest.mark.parametrize("device,message", [("cuda", r"run.device=cuda but CUDA is not available"),
                                            ("bogus", r"run.device='bogus' is not a device")])
def test_run_section_device_errors_are_one_line(capsys, tmp_path, corpus, device, message):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("CUDA is available here, so run.device=cuda is valid")
    _fails_with(capsys, ["lm", "train", *tiny_lm_args(corpus, tmp_path / "o"), f"run.device={device}"], message)


@pytest.mark.parametrize("argv,pattern", [
    (["lm", "train", "data.sources=[bible"], r"override 'data.sources=\[bible': the value is not valid YAML"),
    (["lm", "sample", "RUN", "--top-k", "0"], r"argument --top-k: must be at least 1, got 0"),
    (["lm", "sample", "RUN", "--max-new-tokens", "-3"], r"argument --max-new-tokens: must be at least 1, got -3"),
    (["sim", "sample", "RUN", "--n", "0"], r"argument --n: must be at least 1, got 0"),
    (["data", "scenes", "gallery", "--cols", "0", "--out", "OUT/g.png"], r"argument --cols: must be at least 1"),
    (["data", "scenes", "export", "--n", "two", "--out", "OUT/e"], r"argument --n: 'two' is not an integer"),
    (["tips", "train", "--config", "configs/tips/smoke.yaml", "--out", "OUT/t", "ssl.n_local=-1"],
     r"ssl.n_local=-1 must be at least 1"),
])
def test_bad_arguments_are_one_line_errors_that_write_nothing(capsys, tmp_path, argv, pattern):
    """Values that used to end in a traceback from deep inside torch or the YAML parser (issue 20)."""
    argv = [str(ROOT / a) if a.startswith("configs/") else a.replace("RUN", str(tmp_path / "run"))
            .replace("OUT", str(tmp_path / "out")) for a in argv]
    _fails_with(capsys, argv, pattern)
    assert not (tmp_path / "out").exists() and not (tmp_path / "run").exists()
