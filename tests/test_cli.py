"""Bad input: each case is a one-line error, exit code 2, and nothing already written changes."""

import hashlib
import re
from pathlib import Path

import pytest
import torch
from conftest import tiny_lm_args

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


def test_corpus_shorter_than_one_sequence(capsys, tmp_path, corpus):
    (tmp_path / "s.txt").write_text("just a few words " * 20)
    _fails_with(capsys, ["lm", "train", *tiny_lm_args(corpus, tmp_path / "o"), f"data.sources=[{tmp_path}/s.txt]",
                         "model.seq_len=64"],
                r"error: corpus .*s.txt \(validation split\) has \d+ tokens, fewer than one sequence of seq_len\+1=65")


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




def test_checkpoints_carry_their_tokenizer_and_load_lm_reads_a_run(finished_run, tmp_path):
    """Issue 20: every checkpoint directory carries what loads it; ``load_lm`` takes a run directory (its latest
    checkpoint), a checkpoint directory or a bare weights directory (an error: no tokenizer)."""
    import shutil

    from fmrecipes.core.checkpoint import latest_checkpoint, load_lm
    from fmrecipes.core.tokenizer import load_tokenizer
    from fmrecipes.errors import FmError

    ckpt = latest_checkpoint(finished_run)
    assert (ckpt / "tokenizer.json").is_file()
    corpus_vocab = load_tokenizer(finished_run / "data" / "tokenizer").get_vocab()
    model, tok = load_lm(finished_run)
    assert tok.get_vocab() == corpus_vocab
    again, tok2 = load_lm(ckpt)
    assert tok2.get_vocab() == corpus_vocab
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    bare = tmp_path / "bare"
    bare.mkdir()
    for f in ("config.json", "model.safetensors"):
        shutil.copy(ckpt / f, bare / f)
    with pytest.raises(FmError, match=r"model .*bare carries no tokenizer"):
        load_lm(bare)
