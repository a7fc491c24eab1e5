"""``fmrecipes <command> <verb> [--config F.yaml] [key=value ...]``."""

from __future__ import annotations

import argparse
import json
import sys

from . import config as configlib
from .errors import FmError
from .recipes import RECIPES, recipe_module
from .reproduce import PRESETS


def add_config_args(p: argparse.ArgumentParser, default_out: bool = True) -> None:
    """The common ``--config F.yaml``, ``--out DIR`` and ``key=value`` override arguments."""
    p.add_argument("--config", help="YAML config file (see configs/)")
    if default_out:
        p.add_argument("--out", help="output/run directory (overrides the config's `out`)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, dotted for nesting")


def add_verb(verbs, name: str, help: str, func) -> argparse.ArgumentParser:
    """A recipe verb taking the common config arguments; returns its parser for extra options."""
    v = verbs.add_parser(name, help=help)
    add_config_args(v)
    v.set_defaults(func=func)
    return v


def load_config(cls, args: argparse.Namespace):
    overrides = list(args.overrides)
    if getattr(args, "out", None):
        overrides.append(f"out={args.out}")
    return configlib.load(cls, args.config, overrides)


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


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``fmrecipes: error: ...``, exit code 2)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    listing = "\n".join(f"  {name:<11} {desc}{'' if recipe_module(name) else '  [not implemented yet]'}"
                        for name, desc in RECIPES.items())
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
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--temperature", type=float, default=0.8, help="0 = greedy")
    p.add_argument("--top-k", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_lm_sample)

    p = sub.add_parser("reproduce", help="run a recipe's small-scale paper comparison (or all, plus the report)")
    p.add_argument("recipe", choices=[*RECIPES, "all"])
    p.add_argument("--preset", choices=PRESETS, default="quick", help="smoke: seconds; quick: demo; full: real")
    p.add_argument("--out", default="runs/reproduce", help="output directory (default: runs/reproduce)")
    p.set_defaults(func=_reproduce)

    p = sub.add_parser("report", help="rebuild report.md / report.html from an output directory")
    p.add_argument("--out", default="runs/reproduce")
    p.set_defaults(func=_report)

    from .data.cli import register_cli as register_data

    register_data(sub)
    for name in RECIPES:
        module = recipe_module(name)
        if module is not None and hasattr(module, "register_cli"):
            module.register_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except FmError as exc:
        print(f"fmrecipes: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fmrecipes: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
