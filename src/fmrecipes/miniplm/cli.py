"""``fmrecipes miniplm train-ref | train-teacher | score | select | pretrain``."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from ..cli_helpers import add_verb, load_config
from ..core import dist
from ..core.checkpoint import load_model, resolve_checkpoint, tokenizer_of
from ..errors import FmError
from .config import SELECTORS, MiniPLMConfig
from .pool import Subset, build_pool, skipped_eos
from .score import load_scores, model_vocab, require_scores, score
from .select import refined_dataset, selector_scores, top_alpha, write_refined
from .stages import compute_matched, num_params, sized, train_model

SCORE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")  # a directory name under OUT/scores/, never a path


def _cfg(args: argparse.Namespace) -> MiniPLMConfig:
    return load_config(MiniPLMConfig, args)


def _load_model(path: str):
    """A checkpoint directory, a run directory (its latest checkpoint) or a Hugging Face model directory."""
    return load_model(resolve_checkpoint(path))


def _score_tokenizers(args: argparse.Namespace, pool) -> tuple | None:
    """How the model reads the pool: None when it uses the corpus's token ids, else (corpus tokenizer, the model's
    tokenizer) to score the text with the model's own (another family). The tokenizer is the one the model carries
    (checked in :func:`_score`) or the one the user names (``--tokenizer corpus|model|DIR``); a carried one that
    differs from the corpus's needs ``--tokenizer model``: scoring with the wrong ids is silently wrong."""
    from ..core.tokenizer import load_tokenizer

    if args.tokenizer == "corpus":
        return None
    found = tokenizer_of(args.model)
    if args.tokenizer not in (None, "model"):
        found = Path(args.tokenizer)
    model_tok = load_tokenizer(found)
    if model_tok.get_vocab() == pool.tokenizer.get_vocab():
        return None
    if args.tokenizer is None:
        raise FmError(f"model {args.model}'s tokenizer ({found}) differs from the corpus's: pass --tokenizer model "
                      "to score the text with the model's own tokenizer, or --tokenizer corpus if it reads the "
                      "corpus's ids")
    return pool.tokenizer, model_tok


def _train_ref(args: argparse.Namespace) -> int:
    cfg = _cfg(args)
    pool = build_pool(cfg)
    train_model(sized(cfg.reference, cfg.vocab_size, cfg.seq_len), cfg.reference_train,
                Subset(pool.train, pool.ref_indices), pool.val, Path(cfg.out) / "models" / "reference",
                dist.setup(cfg.run), tokenizer=pool.tokenizer)
    print(Path(cfg.out) / "models" / "reference")
    return 0


def _train_teacher(args: argparse.Namespace) -> int:
    cfg = _cfg(args)
    pool = build_pool(cfg)
    train_model(sized(cfg.teacher, cfg.vocab_size, cfg.seq_len), cfg.teacher_train,
                Subset(pool.train, pool.teacher_indices), pool.val,
                Path(cfg.out) / "models" / "teacher", dist.setup(cfg.run), tokenizer=pool.tokenizer)
    print(Path(cfg.out) / "models" / "teacher")
    return 0


def _score(args: argparse.Namespace) -> int:
    cfg = _cfg(args)
    if not SCORE_NAME.fullmatch(args.name):
        raise FmError(f"--name {args.name!r} must be a plain name (letters, digits, '_', '-', '.'), not a path")
    model = _load_model(args.model)  # a bad model path is an error before anything is written
    if args.tokenizer in (None, "model") and tokenizer_of(args.model) is None:
        raise FmError(f"model {args.model} carries no tokenizer: pass --tokenizer corpus if it was trained on this "
                      "corpus's tokenizer, or --tokenizer DIR with the one it uses")
    env = dist.setup(cfg.run)
    pool = build_pool(cfg, env)
    text = _score_tokenizers(args, pool)
    own = len(text[1]) if text is not None else len(pool.tokenizer)
    if model_vocab(model) < own:
        raise FmError(f"model {args.model} has a vocabulary of {model_vocab(model)} tokens, which does not cover "
                      f"{'its own' if text is not None else 'the corpus'} tokenizer's {own}")
    out = Path(cfg.out) / "scores" / args.name
    scores = score(model, pool.train, pool.pool_indices, out, pool.pool_hash, args.name, cfg.score_batch_size,
                   cfg.score_chunk, env, text, skipped_eos(cfg, pool))
    dist.teardown(env)
    if env.is_main:
        print(json.dumps({"scores": str(out / "scores.npy"), "count": len(scores), "mean_nll": float(scores.mean())}))
    return 0


def _select(args: argparse.Namespace) -> int:
    cfg = _cfg(args)
    if not 0.0 < args.alpha <= 1.0:
        raise FmError(f"--alpha {args.alpha} must be in (0, 1]")
    root = Path(cfg.out) / "scores"
    needs = {"miniplm": ("teacher", "reference"), "teacher-loss": ("teacher",), "rho": ("rho_proxy", "reference"),
             "random": ()}[args.method]
    for name in needs:  # before the pool is built: a missing score set writes nothing
        require_scores(root / name)
    pool = build_pool(cfg)
    n = len(pool.pool_indices)
    get = lambda name: load_scores(root / name, pool.pool_hash, n)  # noqa: E731
    nll = {name: get(name) for name in needs}
    scores = selector_scores(args.method, nll.get("teacher"), nll.get("reference"), nll.get("rho_proxy"), n=n,
                             seed=cfg.student_train.seed)
    kept = top_alpha(scores, args.alpha)
    out = Path(cfg.out) / "refined" / args.method
    report = write_refined(out, pool.train, pool.pool_indices, kept, pool.domains(pool.train, pool.pool_indices),
                           cfg.vocab_size, args.method, args.alpha)
    print(json.dumps(report))
    return 0


def _pretrain(args: argparse.Namespace) -> int:
    cfg = _cfg(args)
    students = {s.name: s for s in cfg.students}
    if args.student not in students:
        raise FmError(f"--student {args.student!r} is not in the config's students ({', '.join(students)})")
    if args.kd == "vanilla" and not args.teacher:
        raise FmError("--kd vanilla needs --teacher PATH")
    L = cfg.seq_len
    refined = refined_dataset(cfg.out, args.data, L) if args.data != "full" else None
    pool = build_pool(cfg)
    model_cfg = sized(students[args.student].model, cfg.vocab_size, L)
    data = Subset(pool.train, pool.pool_indices) if refined is None else refined
    train_cfg, teacher = cfg.student_train, None
    if args.kd == "vanilla":
        teacher = _load_model(args.teacher)
        if args.compute_matched:
            train_cfg = compute_matched(train_cfg, model_cfg, num_params(teacher))
    tag = f"{args.data.replace('/', '_')}{'_kd' if teacher is not None else ''}"
    run = Path(cfg.out) / "students" / args.student / tag
    _, result = train_model(model_cfg, train_cfg, data, pool.val, run, dist.setup(cfg.run), teacher=teacher,
                            kd_ratio=cfg.kd_ratio, temperature=cfg.kd_temperature, eos_id=skipped_eos(cfg, pool),
                            tokenizer=pool.tokenizer)
    print(json.dumps({"run": str(run), "val_loss": result.val_loss}))
    return 0


def register_cli(verbs) -> None:
    """The stages as verbs of ``fmrecipes miniplm``."""
    add_verb(verbs, "train-ref", "train the reference LM on D_ref (held out from scoring)", _train_ref)
    add_verb(verbs, "train-teacher", "train the teacher LM on its own documents (disjoint from D and D_ref)",
             _train_teacher)
    v = add_verb(verbs, "score", "per-instance mean token log-likelihood of D under a model (torchrun-able)", _score)
    v.add_argument("--model", required=True, help="run dir, checkpoint dir, or Hugging Face causal-LM dir")
    v.add_argument("--name", required=True, help="score set name (teacher, reference, ...) under OUT/scores/")
    v.add_argument("--tokenizer", help="which tokenizer the model reads: 'corpus' (the corpus's ids), 'model' (its "
                   "own, scoring the text: another family) or a tokenizer DIR; default: the one it carries, which "
                   "must be the corpus's")
    v = add_verb(verbs, "select", "keep the top-alpha instances of D by a selector; write the refined corpus", _select)
    v.add_argument("--alpha", type=float, default=0.5)
    v.add_argument("--method", choices=SELECTORS, default="miniplm")
    v = add_verb(verbs, "pretrain", "pretrain a student on D ('full') or a refined corpus", _pretrain)
    v.add_argument("--student", required=True, help="a student name from the config")
    v.add_argument("--data", default="full", help="'full' or the selector name of a refined corpus")
    v.add_argument("--kd", choices=["none", "vanilla"], default="none", help="online Vanilla KD")
    v.add_argument("--teacher", help="teacher model for --kd vanilla")
    v.add_argument("--compute-matched", action="store_true", help="Vanilla KD steps x 3Ns/(3Ns+Nt)")
