"""Collect every recipe's ``summary.json`` and plots into ``report.md`` and a self-contained ``report.html``.

A summary is a flat mapping of dotted keys; a key ``paper.<k>`` holds the paper's number for ``<k>``
and is shown beside ours. Keys ``<metric>.<entity>`` (e.g. ``ppl.qk_norm``) form the main table, one row per
entity; other keys are listed below it. Recipes without a summary show as "not implemented" or "failed".
"""

from __future__ import annotations

import base64
import html
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..core.fileio import atomic_write_text
from ..recipes import RECIPES, recipe_module

META_KEYS = ("preset", "wall_time_s", "machine")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def split_summary(summary: dict[str, Any]) -> tuple[list[str], list[str], dict, list[tuple[str, str, str]]]:
    """Pivot ``metric.entity`` keys into a table (entities x metrics, each cell (ours, paper)).

    Returns (entities, metrics, cells, details); keys of any other shape go to the details rows
    (metric, ours, paper).
    """
    ours = {k: v for k, v in summary.items() if not k.startswith("paper.") and k not in META_KEYS}
    paper = {k[len("paper."):]: v for k, v in summary.items() if k.startswith("paper.")}
    entities: list[str] = []
    metrics: list[str] = []
    cells: dict[tuple[str, str], tuple[str, str]] = {}
    details = []
    for key in list(ours) + [k for k in paper if k not in ours]:
        parts = key.split(".")
        if len(parts) == 2:
            metric, entity = parts
            metrics += [metric] if metric not in metrics else []
            entities += [entity] if entity not in entities else []
            cells[(entity, metric)] = (_fmt(ours.get(key)), _fmt(paper.get(key)))
        else:
            details.append((key, _fmt(ours.get(key)), _fmt(paper.get(key))))
    return entities, metrics, cells, details


def recipe_status(out_dir: Path, name: str) -> tuple[str, dict[str, Any]]:
    """('done', summary) | ('failed', {'error': ...}) | ('not run', {}) | ('not implemented', {})."""
    d = out_dir / name
    if (d / "summary.json").is_file():
        return "done", json.loads((d / "summary.json").read_text())
    if (d / "failed.json").is_file():
        return "failed", json.loads((d / "failed.json").read_text())
    return ("not run" if recipe_module(name) is not None else "not implemented"), {}


def _plots(out_dir: Path, name: str) -> list[Path]:
    return sorted((out_dir / name).glob("*.png"))


def _config_text(out_dir: Path, name: str) -> str:
    p = out_dir / name / "config.yaml"
    return p.read_text() if p.is_file() else ""


def markdown(out_dir: Path) -> str:
    lines = ["# fmrecipes report", "", f"Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}.", ""]
    for name, desc in RECIPES.items():
        status, summary = recipe_status(out_dir, name)
        lines += [f"## {name}", "", f"_{desc}_", ""]
        if status != "done":
            detail = f": {summary['error']}" if status == "failed" else ""
            lines += [f"**{status}**{detail}", ""]
            continue
        lines += [f"Preset `{summary.get('preset')}`, wall time {summary.get('wall_time_s')} s, "
                  f"machine: {summary.get('machine')}.", ""]
        entities, metrics, cells, details = split_summary(summary)
        if entities:
            lines += ["| | " + " | ".join(f"{m} (ours) | {m} (paper)" for m in metrics) + " |",
                      "| --- " * (1 + 2 * len(metrics)) + "|"]
            for e in entities:
                row = [x for m in metrics for x in cells.get((e, m), ("", ""))]
                lines.append(f"| {e} | " + " | ".join(row) + " |")
            lines.append("")
        if details:
            lines += ["| metric | ours | paper |", "| --- | --- | --- |"]
            lines += [f"| {k} | {o} | {p} |" for k, o, p in details]
            lines.append("")
        lines += [f"![{p.stem}]({name}/{p.name})" for p in _plots(out_dir, name)]
        if _config_text(out_dir, name):
            lines += ["", "<details><summary>config</summary>", "", "```yaml", _config_text(out_dir, name).rstrip(),
                      "```", "", "</details>"]
        lines.append("")
    return "\n".join(lines)


CSS = """body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f3f3f3}.status{font-weight:bold;color:#a33}img{max-width:100%;display:block;margin:8px 0}
pre{background:#f6f6f6;padding:8px;overflow:auto}"""


def html_page(out_dir: Path) -> str:
    e = html.escape
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>fmrecipes report</title>",
             f"<style>{CSS}</style></head><body>", "<h1>fmrecipes report</h1>",
             f"<p>Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}.</p>"]
    for name, desc in RECIPES.items():
        status, summary = recipe_status(out_dir, name)
        parts.append(f"<section id='{name}'><h2>{e(name)}</h2><p><em>{e(desc)}</em></p>")
        if status != "done":
            detail = f": {e(summary['error'])}" if status == "failed" else ""
            parts.append(f"<p class='status'>{e(status)}{detail}</p></section>")
            continue
        parts.append(f"<p>Preset <code>{e(str(summary.get('preset')))}</code>, wall time "
                     f"{e(str(summary.get('wall_time_s')))} s, machine: {e(str(summary.get('machine')))}.</p>")
        entities, metrics, cells, details = split_summary(summary)
        if entities:
            parts.append("<table><tr><th></th>" + "".join(f"<th>{e(m)} (ours)</th><th>{e(m)} (paper)</th>"
                                                         for m in metrics) + "</tr>")
            for ent in entities:
                row = "".join(f"<td>{e(x)}</td>" for m in metrics for x in cells.get((ent, m), ("", "")))
                parts.append(f"<tr><th>{e(ent)}</th>{row}</tr>")
            parts.append("</table>")
        if details:
            parts.append("<details><summary>all measurements</summary><table><tr><th>metric</th><th>ours</th>"
                         "<th>paper</th></tr>")
            parts += [f"<tr><td>{e(k)}</td><td>{e(o)}</td><td>{e(p)}</td></tr>" for k, o, p in details]
            parts.append("</table></details>")
        for p in _plots(out_dir, name):
            data = base64.b64encode(p.read_bytes()).decode()
            parts.append(f"<img alt='{e(p.stem)}' title='{e(p.stem)}' src='data:image/png;base64,{data}'>")
        if _config_text(out_dir, name):
            parts.append(f"<details><summary>config</summary><pre>{e(_config_text(out_dir, name))}</pre></details>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(out_dir: str | Path) -> tuple[Path, Path]:
    out = Path(out_dir)
    md, page = out / "report.md", out / "report.html"
    atomic_write_text(md, markdown(out))
    atomic_write_text(page, html_page(out))
    return md, page
