"""Committed results: each recipe's full-preset summaries under ``results/<recipe>/``, and those of a preset of a
recipe's own (``configs/<recipe>/<preset>.yaml``, e.g. tips ``long``) under ``results/<recipe>/<preset>/``.

``results/<recipe>/`` holds ``summary.json`` (means, spreads, per-seed values, verdicts), ``seed<k>/summary.json``
(each replicate), ``config.yaml`` and ``provenance.json`` (the commit, command and machine that produced them;
never checkpoints). :func:`publish` copies them out of a finished ``reproduce`` directory; the report shows
them beside a new run's verdicts, and :mod:`fmrecipes.report.docs` renders the documentation's tables from them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .core.fileio import atomic_write_json, ensure_dir
from .errors import FmError
from .recipe import SUMMARY
from .recipes import get

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "results"
PROVENANCE = "provenance.json"
NOT_COMMITTED = ("smoke", "quick")  # presets that measure too little to commit


def result_dir(name: str, preset: str = "full", root: Path = RESULTS) -> Path:
    """Where recipe ``name``'s committed results of ``preset`` live: ``root/name``, or ``root/name/preset``."""
    return root / name if preset == "full" else root / name / preset


def reference(name: str, root: Path = RESULTS, preset: str = "full") -> dict[str, Any] | None:
    """Recipe ``name``'s committed summary of ``preset``, or None when none is committed."""
    path = result_dir(name, preset, root) / SUMMARY
    return json.loads(path.read_text()) if path.is_file() else None


def provenance(name: str, root: Path = RESULTS, preset: str = "full") -> dict[str, Any]:
    path = result_dir(name, preset, root) / PROVENANCE
    return json.loads(path.read_text()) if path.is_file() else {}


def head_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def publish(name: str, run_dir: str | Path, command: str | None, commit: str | None = None,
            root: Path = RESULTS) -> Path:
    """Copy recipe ``name``'s summaries (the whole run's and each seed's) and config from ``run_dir`` (the
    ``--out`` of ``reproduce``, or the recipe's own directory) to :func:`result_dir` of its preset, with their
    provenance (``command``: the command that produced them; default: the ``reproduce`` command of that preset)."""
    get(name)
    src = Path(run_dir)
    src = src / name if (src / name / SUMMARY).is_file() else src
    if not (src / SUMMARY).is_file():
        raise FmError(f"results publish: {src / SUMMARY} does not exist; run `fmrecipes reproduce {name} --preset "
                      f"full --out DIR` first and pass DIR")
    summary = json.loads((src / SUMMARY).read_text())
    preset = summary.get("preset")
    if not isinstance(preset, str) or preset in NOT_COMMITTED:
        raise FmError(f"results publish: {src / SUMMARY} is from preset {preset!r}; only full-preset results (or a "
                      "recipe's own preset, such as tips long) are committed")
    missing = [s for s in summary.get("seeds", []) if not (src / f"seed{s}" / SUMMARY).is_file()]
    if missing:
        raise FmError(f"results publish: {src} lacks the per-seed summaries of seeds {missing}")
    dest = ensure_dir(result_dir(name, preset, root))
    command = command or f"fmrecipes reproduce {name} --preset {preset} --out {run_dir}"
    for old in dest.glob("seed*"):
        shutil.rmtree(old)
    shutil.copyfile(src / SUMMARY, dest / SUMMARY)
    if (src / "config.yaml").is_file():
        shutil.copyfile(src / "config.yaml", dest / "config.yaml")
    for s in summary["seeds"]:
        shutil.copyfile(src / f"seed{s}" / SUMMARY, ensure_dir(dest / f"seed{s}") / SUMMARY)
    atomic_write_json(dest / PROVENANCE, {
        "commit": commit or head_commit(), "command": command, "machine": summary.get("machine"),
        "preset": preset, "seeds": summary["seeds"], "wall_time_s": summary.get("wall_time_s"),
        "reused_seeds": summary.get("reused_seeds", []),
        "published": f"{datetime.now(timezone.utc):%Y-%m-%d}"})
    return dest
