"""``fmrecipes <command> <verb> [--config F.yaml] [key=value ...]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .cli_helpers import Parser, add_config_args, add_verb, load_config, non_negative_float, positive_int
from .errors import FmError, Preempted
from .recipe import SUMMARY
from .recipes import RECIPES, all_recipes, get
from .reproduce import PRESETS


def _lm_train(args: argparse.Namespace) -> int:
    from .lm.config import LMConfig
    from .lm.verbs import train_lm

    train_lm(load_config(LMConfig, args))
    return 0


def _lm_eval(args: argparse.Namespace) -> int:
    from .lm.verbs import eval_lm

    print(json.dumps(eval_lm(args.run, args.device)))
    return 0


def _lm_sample(args: argparse.Namespace) -> int:
    from .lm.verbs import sample_lm

    print(sample_lm(args.run, args.prompt, args.max_new_tokens, args.temperature, args.top_k, args.seed))
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from .reproduce import reproduce

    return 1 if reproduce(args.recipe, args.preset, args.out) else 0


def _report(args: argparse.Namespace) -> int:
    from .report import write_report

    md, page = write_report(args.out)
    print(f"report: {md} and {page}")
    return 0


def _results_publish(args: argparse.Namespace) -> int:
    from .results import publish

    print(f"published: {publish(args.recipe, args.source, args.command_line, args.commit)}")
    return 0


def _results_docs(args: argparse.Namespace) -> int:
    from .report.docs import render_docs

    stale = render_docs(check=args.check)
    if args.check and stale:
        raise FmError(f"generated tables differ from results/ in {', '.join(str(p) for p in stale)}; run "
                      "`fmrecipes results docs`")
    print("up to date" if args.check else f"rendered: {len(stale)} document(s) changed")
    return 0


def _run_recipe(args: argparse.Namespace) -> int:
    """``fmrecipes <recipe> run``: the recipe's comparison with any config, every seed, verdicts."""
    recipe = get(args.command)
    cfg = load_config(recipe.config, args)
    summary = recipe.run(cfg)
    print(json.dumps({k: v for k, v in summary.items() if k.startswith("claims.") and k.endswith(
        (".verdict", ".mean", ".se", ".n_seeds"))}, indent=1))
    print(f"summary: {Path(cfg.out) / SUMMARY}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    recipes = all_recipes()
    listing = "\n".join(f"  {r.name:<11} {r.description}" for r in recipes)
    parser = Parser(
        prog="fmrecipes", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Foundation-model training recipes, faithful to their papers.\n\nrecipes:\n" + listing)
    sub = parser.add_subparsers(dest="command", required=True, metavar="<command>", parser_class=Parser)

    lm = sub.add_parser("lm", help="train / eval / sample the core GPT or a local Hugging Face causal LM")
    lm_sub = lm.add_subparsers(dest="verb", required=True, metavar="<verb>", parser_class=Parser)
    p = lm_sub.add_parser("train", help="train an LM on a corpus (resumes if the run directory has a checkpoint)")
    add_config_args(p)
    p.set_defaults(func=_lm_train)
    p = lm_sub.add_parser("eval", help="validation loss and perplexity of a run's latest checkpoint")
    p.add_argument("run", help="run directory written by `lm train`")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_lm_eval)
    p = lm_sub.add_parser("sample", help="generate text from a run's latest checkpoint")
    p.add_argument("run", help="run directory written by `lm train`")
    p.add_argument("--prompt", default="", help="text to continue")
    p.add_argument("--max-new-tokens", type=positive_int, default=64)
    p.add_argument("--temperature", type=non_negative_float, default=0.8, help="0 = greedy")
    p.add_argument("--top-k", type=positive_int, default=50, help="sample from the k likeliest tokens (k >= 1)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_lm_sample)

    p = sub.add_parser("reproduce", help="run a recipe's small-scale paper comparison (or all, plus the report)")
    p.add_argument("recipe", choices=[*RECIPES, "all"])
    p.add_argument("--preset", default="quick", help=f"{', '.join(PRESETS)} (smoke: seconds; quick: demo; full: "
                   "real), or a recipe's own preset in configs/<recipe>/ (tips: long)")
    p.add_argument("--out", default="runs/reproduce", help="output directory (default: runs/reproduce)")
    p.set_defaults(func=_reproduce)

    p = sub.add_parser("report", help="rebuild report.md / report.html from an output directory")
    p.add_argument("--out", default="runs/reproduce")
    p.set_defaults(func=_report)

    results = sub.add_parser("results", help="committed full-preset results (results/) and the tables made from them")
    verbs = results.add_subparsers(dest="verb", required=True, metavar="<verb>", parser_class=Parser)
    p = verbs.add_parser("publish", help="copy a full run's summaries (no checkpoints) to results/<recipe>/ (a "
                         "recipe's own preset P: results/<recipe>/P/)")
    p.add_argument("recipe", choices=RECIPES)
    p.add_argument("--from", dest="source", required=True,
                   help="the --out directory of `reproduce --preset full` (or P)")
    p.add_argument("--commit", default=None, help="the commit that produced the run (default: the checkout's HEAD)")
    p.add_argument("--command-line", default=None, help="the command that produced the run, as recorded")
    p.set_defaults(func=_results_publish)
    p = verbs.add_parser("docs", help="regenerate the results tables in README.md and docs/ from results/")
    p.add_argument("--check", action="store_true", help="write nothing; fail if a table is out of date")
    p.set_defaults(func=_results_docs)

    from .data.cli import register_cli as register_data

    register_data(sub)
    for recipe in recipes:
        p = sub.add_parser(recipe.name, help=f"{recipe.description} ({recipe.paper})")
        verbs = p.add_subparsers(dest="verb", required=True, metavar="<verb>", parser_class=Parser)
        add_verb(verbs, "run", "the paper's comparison with any config: every seed of `seeds`, the claims' verdicts "
                 "(resumes)", _run_recipe)
        if recipe.register_cli is not None:
            recipe.register_cli(verbs)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except Preempted as exc:
        print(f"fmrecipes: {exc}", file=sys.stderr)
        return Preempted.exit_code
    except FmError as exc:
        print(f"fmrecipes: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fmrecipes: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
