"""Collect every recipe's ``summary.json`` and plots into ``report.md`` and a self-contained ``report.html``.

The report opens with one table of every recipe's claims (claim, paper figure, ours as mean ± std of the paired
per-seed differences with n, verdict, the committed full-preset result from ``results/`` and whether this run's
difference points the same way) and a forest plot of them (:mod:`fmrecipes.report.forest`). A summary is a flat
mapping of dotted keys; ``paper.<k>`` holds the paper's number for ``<k>`` and is shown beside ours, and
``spread.<k>`` (std over seeds) after ours as "± s".
A recipe's declared tables (:class:`~fmrecipes.recipe.ReportTable`) come first. The keys none of them shows are
laid out by their shape: ``<metric>.<entity>`` (``ppl.qk_norm``) form the main table, one row per entity;
``<metric>.<entity>.<column>`` (``val_loss.miniplm.small``) form one table per metric; other keys are listed
last. Plots are the recipe directory's and its first replicate's. Recipes without a summary show as "not run"
or "failed".
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..claims import Claim, claim_fields
from ..core.fileio import atomic_write_text
from ..errors import FmError
from ..recipe import ReportTable
from ..recipes import all_recipes
from ..results import reference
from .forest import VERDICT_COLOUR, forest_plot, points

META_KEYS = ("preset", "wall_time_s", "machine", "seeds", "reused_seeds")
DERIVED = ("claims.", "spread.", "per_seed.", "paper.")  # shown through the keys they belong to


SPREAD_FLOOR = 1e-9  # a spread below this fraction of the value is float rounding (thread counts), shown as 0


def _fmt(value: Any, spread: Any = None) -> str:
    text = f"{value:.4g}" if isinstance(value, float) else ("" if value is None else str(value))
    if not (isinstance(spread, float) and text):
        return text
    if isinstance(value, (int, float)) and abs(spread) <= SPREAD_FLOOR * abs(value):
        spread = 0.0
    return f"{text} ± {spread:.2g}"


def _same_direction(run: dict[str, Any], committed: dict[str, Any]) -> str:
    """Whether a run's mean paired difference has the sign of the committed full run's."""
    a, b = run.get("mean"), committed.get("mean")
    if not (isinstance(a, (int, float)) and isinstance(b, (int, float))) or a == 0 or b == 0:
        return "n/a"
    return "yes" if (a > 0) == (b > 0) else "no"


def why(summary: dict[str, Any], claim: Claim) -> str:
    """The claim's diagnostics (:attr:`Claim.diagnostics`) as ``key = mean ± std``, for a claim that did not hold
    ('' when it holds or declares none)."""
    if claim_fields(summary, claim).get("verdict") == "holds":
        return ""
    return "; ".join(f"{k} = {_fmt(summary.get(k, 'not measured'), summary.get(f'spread.{k}'))}"
                     for k in claim.diagnostics)


def claim_rows(summary: dict[str, Any], claims: Sequence[Claim],
               committed: dict[str, Any] | None = None) -> list[dict[str, str]]:
    """One row per claim: statement, paper, ours (the paired difference as mean ± std with n, or both sides'
    values where no seed gave a paired difference, e.g. censored ones) and verdict; with the ``committed``
    full-preset summary (``results/``) also its verdict and difference (``full``) and whether this run's
    difference points the same way (``agrees``)."""
    rows = []
    for claim in claims:
        c = claim_fields(summary, claim)
        n = c.get("n_seeds", 0)
        a, b = (_fmt(summary.get(k, "not measured")) for k in (claim.a, claim.b))
        diff = (f"no paired value: {claim.a} = {a}, {claim.b} = {b}" if c.get("mean") is None
                else f"{c['metric']} = {_fmt(c['mean'], c.get('std'))}")
        row = {"claim": str(c.get("statement", claim.id)), "paper": str(c.get("paper", "")),
               "ours": f"{diff} (n={n})", "verdict": str(c.get("verdict", "")), "why": why(summary, claim)}
        if committed is not None:
            f = claim_fields(committed, claim)
            row["full"] = (f"{f.get('verdict')}: {_fmt(f.get('mean'), f.get('std'))} (n={f.get('n_seeds', 0)})"
                           if f else "none committed yet")
            row["agrees"] = _same_direction(c, f)
        rows.append(row)
    return rows


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)


def _grid(title: str, cells: dict[tuple[str, str], str], row_order: list[str], col_order: list[str],
          corner: str = "") -> Table:
    return Table(title, [corner, *col_order], [[r, *[cells.get((r, c), "") for c in col_order]] for r in row_order])


def declared_table(summary: dict[str, Any], spec: ReportTable) -> tuple[Table, set[str]]:
    """A table a recipe declares, and the summary keys it shows (its own and their ``paper.``/``spread.`` keys)."""
    cells: dict[tuple[str, str], str] = {}
    rows: list[str] = []
    cols: list[str] = []
    used: set[str] = set()
    for metric in spec.metrics:
        paper = spec.paper.get(metric, metric)
        for key in summary:
            for prefix, col in ((f"{metric}.", metric), (f"paper.{paper}.", f"{metric} (paper)")):
                if not key.startswith(prefix) or (prefix == f"{metric}." and key.startswith(DERIVED)):
                    continue
                entity = key[len(prefix):]
                if not entity.startswith(spec.entity_prefix):
                    continue
                rows += [entity] if entity not in rows else []
                cols += [col] if col not in cols else []
                spread = summary.get(f"spread.{key}") if col == metric else None
                cells[(entity, col)] = _fmt(summary[key], spread)
                used |= {key, f"spread.{key}", f"per_seed.{key}"}
    return _grid(spec.title, cells, rows, cols), used


def tables(summary: dict[str, Any], declared: Sequence[ReportTable] = ()) -> list[Table]:
    """The summary as tables: those the recipe ``declared``, then the other keys by their shape (see the module
    docstring)."""
    out: list[Table] = []
    for spec in declared:
        table, used = declared_table(summary, spec)
        out += [table] if table.rows else []
        summary = {k: v for k, v in summary.items() if k not in used}
    return out + _shaped_tables(summary)


def _shaped_tables(summary: dict[str, Any]) -> list[Table]:
    """The keys no declared table shows, laid out by their shape (see the module docstring)."""
    ours = {k: v for k, v in summary.items() if not k.startswith(DERIVED) and k not in META_KEYS}
    paper = {k[len("paper."):]: v for k, v in summary.items() if k.startswith("paper.")}
    keys = list(ours) + [k for k in paper if k not in ours]
    main: dict[tuple[str, str], str] = {}
    main_rows: list[str] = []
    main_cols: list[str] = []
    per_metric: dict[str, tuple[dict, list[str], list[str]]] = {}
    scalars = Table("other measurements", ["metric", "ours", "paper"])
    for key in keys:
        o, p = _fmt(ours.get(key), summary.get(f"spread.{key}")), _fmt(paper.get(key))
        parts = key.split(".")
        if len(parts) == 2:
            metric, entity = parts
            for col, val in ((f"{metric} (ours)", o), (f"{metric} (paper)", p)):
                main_cols += [col] if col not in main_cols else []
                main[(entity, col)] = val
            main_rows += [entity] if entity not in main_rows else []
        elif len(parts) >= 3:
            metric, entity, col = parts[0], parts[1], ".".join(parts[2:])
            cells, rows, cols = per_metric.setdefault(metric, ({}, [], []))
            rows += [entity] if entity not in rows else []
            cols += [col] if col not in cols else []
            cells[(entity, col)] = o if not p else (f"{o} (paper {p})" if o else f"(paper {p})")
        else:
            scalars.rows.append([key, o, p])
    # A "(paper)" column only where the paper has a number; then the metric's own column drops "(ours)".
    has_paper = {c[: -len(" (paper)")] for c in main_cols if c.endswith(" (paper)") and any(
        main.get((r, c)) for r in main_rows)}
    keep = [c for c in main_cols if not c.endswith(" (paper)") or c[: -len(" (paper)")] in has_paper]
    renamed = {c: (c if c[: -len(" (ours)")] in has_paper else c[: -len(" (ours)")]) for c in keep
               if c.endswith(" (ours)")}
    main = {(r, renamed.get(c, c)): v for (r, c), v in main.items() if c in keep}
    main_cols = [renamed.get(c, c) for c in keep]
    out = [_grid("results", main, main_rows, main_cols)] if main_rows else []
    out += [_grid(metric, cells, rows, cols) for metric, (cells, rows, cols) in per_metric.items()]
    return out + ([scalars] if scalars.rows else [])


def recipe_status(out_dir: Path, name: str) -> tuple[str, dict[str, Any]]:
    """('done', summary) | ('failed', {'error': ...}) | ('not run', {})."""
    d = out_dir / name
    if (d / "summary.json").is_file():
        return "done", json.loads((d / "summary.json").read_text())
    if (d / "failed.json").is_file():
        return "failed", json.loads((d / "failed.json").read_text())
    return "not run", {}


def _plots(out_dir: Path, name: str, summary: dict[str, Any]) -> list[Path]:
    """The directory's plots, then those of its first replicate (``seed<k>/``, from the summary's ``seeds``)."""
    d = out_dir / name
    first = [d / f"seed{s}" for s in summary.get("seeds", [])[:1]]
    return sorted(d.glob("*.png")) + [p for f in first for p in sorted(f.glob("*.png"))]


def all_claims(out_dir: Path) -> list[dict[str, str]]:
    """Every finished recipe's claim rows, each with its recipe's name and the committed full-preset result."""
    rows = []
    for recipe in all_recipes():
        status, summary = recipe_status(out_dir, recipe.name)
        if status == "done":
            committed = reference(recipe.name) or {}
            rows += [{"recipe": recipe.name, **r} for r in claim_rows(summary, recipe.claims, committed)]
    return rows


FOREST = "claims_forest.png"


def claims_forest(out_dir: Path) -> Path | None:
    """``out_dir/claims_forest.png``: every claim of this run beside the committed full-preset results."""
    rows = []
    for recipe in all_recipes():
        status, summary = recipe_status(out_dir, recipe.name)
        committed = reference(recipe.name)
        rows += [points(f"{recipe.name}: {c.id}", c, summary if status == "done" else None, committed)
                 for c in recipe.claims]
    return forest_plot(rows, out_dir / FOREST, "claims: this run (hollow) and the committed full presets")


DATA_NOTE = ("FashionScenes validation scenes: each image's web alt-texts, its dense (synthetic) caption, and the "
             "re-aligned caption (`fmrecipes data scenes gallery`).")


def _config_text(out_dir: Path, name: str) -> str:
    p = out_dir / name / "config.yaml"
    return p.read_text() if p.is_file() else ""


def wall_time_text(summary: dict[str, Any]) -> str:
    """"wall time N s", and which seeds it does not count (replicates an earlier command finished)."""
    reused = summary.get("reused_seeds")
    return f"wall time {summary.get('wall_time_s')} s" + (
        f" (not counting seeds {reused}, finished by an earlier command)" if reused else "")


def _run_line(summary: dict[str, Any]) -> str:
    how = f"Preset {summary['preset']}" if "preset" in summary else "Run with a config (`run`)"
    return f"{how}, seeds {summary.get('seeds')}, {wall_time_text(summary)}, machine: {summary.get('machine')}."


CLAIM_RULE = ("Verdicts from paired per-seed differences: `holds` when their mean lies in the claimed direction by "
              "more than 2 standard errors with n >= 3 seeds, `fails` when it lies the other way by that margin, "
              "`inconclusive` otherwise (always with n < 3); `not testable` when the claim's ceiling (e.g. a "
              "supervised model's probe) does not clear its floor by the stated gap. Censored values are never "
              "compared.")
WHY = "why not (diagnostic)"
CLAIM_HEADER = ["recipe", "claim", "paper", "ours (mean ± std of the paired difference, n)", "verdict", WHY,
                "committed full preset (results/)", "same direction as full"]
FOREST_NOTE = ("Each claim's paired difference over its standard error, the claimed direction to the right: filled "
               "dots are the committed full-preset results (bars: ±2 SE, the verdict threshold), hollow diamonds "
               "this run on the same scale.")


WALL_HEADER = ["recipe", "preset", "wall time (s)"]


def wall_times(out_dir: Path) -> list[list[str]]:
    """Each finished recipe's wall time (all its seeds), then their total."""
    rows, total = [], 0.0
    for recipe in all_recipes():
        status, summary = recipe_status(out_dir, recipe.name)
        if status == "done" and isinstance(summary.get("wall_time_s"), (int, float)):
            rows.append([recipe.name, str(summary.get("preset", "run")), f"{summary['wall_time_s']:.0f}"])
            total += summary["wall_time_s"]
    return rows + [["total", "", f"{total:.0f} ({total / 60:.1f} min)"]] if rows else []


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table's lines (a ``|`` inside a cell escaped)."""
    def row(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return [row(header), "|" + " --- |" * len(header), *(row(r) for r in rows)]


def markdown(out_dir: Path) -> str:
    lines = ["# fmrecipes report", "", f"Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}.", "",
             "## claims", ""]
    if (out_dir / FOREST).is_file():
        lines += [f"![claims forest plot]({FOREST})", "", FOREST_NOTE, ""]
    lines += [CLAIM_RULE, "", *md_table(CLAIM_HEADER, [
        [r["recipe"], r["claim"], r["paper"], r["ours"], f"**{r['verdict']}**", r["why"], r["full"], r["agrees"]]
        for r in all_claims(out_dir)]), ""]
    walls = wall_times(out_dir)
    if walls:
        lines += ["## wall times", "", *md_table(WALL_HEADER, walls), ""]
    for recipe in all_recipes():
        name = recipe.name
        status, summary = recipe_status(out_dir, name)
        lines += [f"## {name}", "", f"_{recipe.description} ({recipe.paper})_", ""]
        if status != "done":
            detail = f": {summary['error']}" if status == "failed" else ""
            lines += [f"**{status}**{detail}", ""]
            continue
        lines += [_run_line(summary), ""]
        for t in tables(summary, recipe.tables):
            lines += [f"**{t.title}**", "", *md_table(t.header, t.rows), ""]
        lines += [f"![{p.stem}]({p.relative_to(out_dir).as_posix()})" for p in _plots(out_dir, name, summary)]
        if _config_text(out_dir, name):
            lines += ["", "<details><summary>config</summary>", "", "```yaml", _config_text(out_dir, name).rstrip(),
                      "```", "", "</details>"]
        lines.append("")
    if _plots(out_dir, "data", {}):
        lines += ["## data", "", DATA_NOTE, ""] + [f"![{p.stem}](data/{p.name})" for p in _plots(out_dir, "data", {})]
    return "\n".join(lines)


CSS = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.2em;display:block;max-width:100%;overflow-x:auto}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;overflow-wrap:break-word;font-size:.92em}
th{background:#f3f3f3}.status{font-weight:bold;color:#a33}.verdict{font-weight:bold;white-space:nowrap}
img{max-width:100%;display:block;margin:8px 0}
pre{background:#f6f6f6;padding:8px;overflow:auto;white-space:pre-wrap}h3{font-size:1em;margin-bottom:0}"""


def _img(p: Path) -> str:
    data = base64.b64encode(p.read_bytes()).decode()
    return f"<img alt='{html.escape(p.stem)}' title='{html.escape(p.stem)}' src='data:image/png;base64,{data}'>"


def html_page(out_dir: Path) -> str:
    e = html.escape
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>fmrecipes report</title>",
             f"<style>{CSS}</style></head><body>", "<h1>fmrecipes report</h1>",
             f"<p>Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}.</p>",
             "<section id='claims'><h2>claims</h2>"]
    if (out_dir / FOREST).is_file():
        parts += [_img(out_dir / FOREST), f"<p>{e(FOREST_NOTE)}</p>"]
    parts += [f"<p>{e(CLAIM_RULE)}</p><table><tr>", "".join(f"<th>{e(h)}</th>" for h in CLAIM_HEADER) + "</tr>"]
    parts += [f"<tr><td>{e(r['recipe'])}</td><td>{e(r['claim'])}</td><td>{e(r['paper'])}</td><td>{e(r['ours'])}</td>"
              f"<td class='verdict' style='color:{VERDICT_COLOUR.get(r['verdict'], '#222')}'>{e(r['verdict'])}</td>"
              f"<td>{e(r['why'])}</td><td>{e(r['full'])}</td><td>{e(r['agrees'])}</td></tr>"
              for r in all_claims(out_dir)]
    parts.append("</table></section>")
    walls = wall_times(out_dir)
    if walls:
        parts.append("<section id='wall-times'><h2>wall times</h2><table><tr>"
                     + "".join(f"<th>{e(h)}</th>" for h in WALL_HEADER) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in walls]
        parts.append("</table></section>")
    for recipe in all_recipes():
        name = recipe.name
        status, summary = recipe_status(out_dir, name)
        parts.append(f"<section id='{name}'><h2>{e(name)}</h2><p><em>{e(recipe.description)} "
                     f"({e(recipe.paper)})</em></p>")
        if status != "done":
            detail = f": {e(summary['error'])}" if status == "failed" else ""
            parts.append(f"<p class='status'>{e(status)}{detail}</p></section>")
            continue
        parts.append(f"<p>{e(_run_line(summary))}</p>")
        for t in tables(summary, recipe.tables):
            parts.append(f"<h3>{e(t.title)}</h3><table><tr>" + "".join(f"<th>{e(h)}</th>" for h in t.header) + "</tr>")
            parts += ["<tr><th>" + e(r[0]) + "</th>" + "".join(f"<td>{e(c)}</td>" for c in r[1:]) + "</tr>"
                      for r in t.rows]
            parts.append("</table>")
        parts += [_img(p) for p in _plots(out_dir, name, summary)]
        if _config_text(out_dir, name):
            parts.append(f"<details><summary>config</summary><pre>{e(_config_text(out_dir, name))}</pre></details>")
        parts.append("</section>")
    if _plots(out_dir, "data", {}):
        parts.append(f"<section id='data'><h2>data</h2><p>{e(DATA_NOTE)}</p>")
        parts += [_img(p) for p in _plots(out_dir, "data", {})] + ["</section>"]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(out_dir: str | Path) -> tuple[Path, Path]:
    """``report.md`` and ``report.html`` of the output directory ``out_dir`` (of ``reproduce``): a one-line error
    unless it is a directory holding at least one recipe's directory."""
    out = Path(out_dir)
    if not out.is_dir():
        raise FmError(f"report --out {out} is not a directory; pass the --out directory of `fmrecipes reproduce`")
    if not any((out / r.name).is_dir() for r in all_recipes()):
        raise FmError(f"report --out {out} holds no recipe's output (<recipe>/summary.json); run `fmrecipes "
                      "reproduce` into it first")
    md, page = out / "report.md", out / "report.html"
    claims_forest(out)
    atomic_write_text(md, markdown(out))
    atomic_write_text(page, html_page(out))
    return md, page
