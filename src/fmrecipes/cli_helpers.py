"""Argument-parsing helpers shared by the entry point, the recipes' verbs and the data verbs.

Recipes and ``data`` import these instead of :mod:`fmrecipes.cli`, which imports them (no import circle).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import config as configlib


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``fmrecipes: error: ...``, exit code 2)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1 (else a one-line usage error naming the value)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number of at least 0 (else a one-line usage error naming the value)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number of at least 0, got {text}")
    return value


def output_file(*suffixes: str):
    """An argparse type: the path of an output file ending in one of ``suffixes``, not an existing directory
    (else a one-line usage error, before anything is written)."""

    def check(text: str) -> str:
        p = Path(text)
        if p.is_dir():
            raise argparse.ArgumentTypeError(f"{text} is a directory; expected a {' or '.join(suffixes)} file path")
        if p.suffix.lower() not in suffixes:
            raise argparse.ArgumentTypeError(f"{text} must end in {' or '.join(suffixes)}")
        return text

    return check


def add_config_args(p: argparse.ArgumentParser, default_out: bool = True) -> None:
    """The common ``--config F.yaml``, ``--out DIR`` and ``key=value`` override arguments."""
    p.add_argument("--config", help="YAML config file (see configs/)")
    if default_out:
        p.add_argument("--out", help="output/run directory (overrides the config's `out`)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, dotted for nesting")


def add_verb(verbs, name: str, help: str, func) -> argparse.ArgumentParser:
    """A verb taking the common config arguments; returns its parser for extra options."""
    v = verbs.add_parser(name, help=help)
    add_config_args(v)
    v.set_defaults(func=func)
    return v


def load_config(cls, args: argparse.Namespace):
    """``cls`` filled from ``--config``, then the ``key=value`` overrides, then ``--out``."""
    overrides = list(args.overrides)
    if getattr(args, "out", None):
        overrides.append(f"out={args.out}")
    return configlib.load(cls, args.config, overrides)
