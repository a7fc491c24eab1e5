"""The documentation's generated tables: README.md and ``docs/*.md`` hold blocks between
``<!-- results:NAME -->`` and ``<!-- /results:NAME -->`` (``claims``: every committed full-preset claim;
``<recipe>``: that recipe's provenance, claims and tables; ``<recipe>/<preset>``: the same for a preset of the
recipe's own; ``bench``: the committed ``make bench`` runs), rendered from the committed
summaries (:mod:`fmrecipes.results`) by the report's own code. ``fmrecipes results docs`` writes them; ``--check``
(and a test) fails when a committed table differs from what the summaries give, so no number in a generated block
is typed by hand.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..core.fileio import atomic_write_text
from ..errors import FmError
from ..recipes import all_recipes, get
from ..results import REPO, RESULTS, provenance, reference, result_dir
from . import FOREST, WHY, claim_rows, md_table, tables, wall_time_text
from .bench import bench_block
from .forest import forest_plot, points

BLOCK = re.compile(r"(<!-- results:(?P<name>[a-z_]+(?:/[a-z_]+)?) -->\n)(?P<body>.*?)(<!-- /results:(?P=name) -->)",
                   re.S)


def claims_block(root: Path = RESULTS) -> str:
    """Every committed claim (recipe, claim, paper, ours, verdict; the diagnostics are on the recipes' pages)
    and, for recipes without committed results, a line saying so."""
    rows, absent = [], []
    for recipe in all_recipes():
        summary = reference(recipe.name, root)
        if summary is None:
            absent.append(f"`{recipe.name}`")
            continue
        rows += [[recipe.name, r["claim"], r["paper"], r["ours"], f"**{r['verdict']}**"]
                 for r in claim_rows(summary, recipe.claims)]
    lines = md_table(["recipe", "claim", "paper", "ours (mean ± std of the paired difference, n)", "verdict"], rows)
    lines += ["", "Each recipe's page (docs/) shows, beside a claim that does not hold, the measured diagnostics "
              "that say why."]
    if absent:
        lines += ["", f"No full-preset results committed yet for {', '.join(absent)} (each lands with the issue that "
                  "changes its experiment)."]
    return "\n".join(lines)


def recipe_block(name: str, root: Path = RESULTS, preset: str = "full") -> str:
    """Recipe ``name``'s committed results of ``preset``: provenance, claims and the report's tables of its
    summary."""
    summary = reference(name, root, preset)
    if summary is None:
        return (f"No {preset}-preset results are committed for `{name}` yet: `fmrecipes reproduce {name} --preset "
                f"{preset} --out runs/{preset}`, then `fmrecipes results publish {name} --from runs/{preset}`.")
    prov = provenance(name, root, preset)
    where = result_dir(name, preset, Path("results"))
    lines = [f"From `{prov.get('command', '?')}` at commit `{str(prov.get('commit', '?'))[:10]}`, seeds "
             f"{summary.get('seeds')}, {wall_time_text(summary)}, on {prov.get('machine', '?')} "
             f"(`{where}/`).", ""]
    lines += md_table(["claim", "paper", "ours (mean ± std of the paired difference, n)", "verdict", WHY],
                    [[r["claim"], r["paper"], r["ours"], f"**{r['verdict']}**", r["why"]]
                     for r in claim_rows(summary, get(name).claims)])
    for t in tables(summary, get(name).tables):
        lines += ["", f"**{t.title}**", "", *md_table(t.header, t.rows)]
    return "\n".join(lines)


def render_block(block: str, root: Path = RESULTS) -> str:
    """The generated text of block ``block`` (``claims``, ``bench``, a recipe's name, or ``<recipe>/<preset>``)."""
    if block == "claims":
        return claims_block(root)
    if block == "bench":
        return bench_block(root / "bench")
    name, _, preset = block.partition("/")
    try:
        return recipe_block(get(name).name, root, preset or "full")
    except FmError:
        raise FmError(f"unknown results block '<!-- results:{block} -->'; use claims, bench, a recipe's name or "
                      "<recipe>/<preset>") from None


def render_text(text: str, root: Path = RESULTS) -> str:
    """``text`` with every generated block re-rendered from the committed summaries."""
    return BLOCK.sub(lambda m: m.group(1) + render_block(m.group("name"), root) + "\n" + m.group(4), text)


def documents(repo: Path = REPO) -> list[Path]:
    """The documents that carry generated blocks: README.md and docs/*.md."""
    return [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]


def committed_forest(path: Path, root: Path = RESULTS) -> Path | None:
    """The forest plot of every committed claim (the README's picture)."""
    rows = [points(f"{r.name}: {c.id}", c, None, reference(r.name, root)) for r in all_recipes() for c in r.claims]
    return forest_plot(rows, path, "committed full-preset results (results/)")


def render_docs(check: bool = False, repo: Path = REPO, root: Path = RESULTS) -> list[Path]:
    """Re-render every document's blocks (and, unless ``check``, ``docs/claims_forest.png``); with ``check`` write
    nothing. Returns the documents whose blocks were out of date."""
    if not check:
        committed_forest(repo / "docs" / FOREST, root)
    stale = []
    for path in documents(repo):
        text = path.read_text()
        new = render_text(text, root)
        if new != text:
            stale.append(path)
            if not check:
                atomic_write_text(path, new)
    return stale
