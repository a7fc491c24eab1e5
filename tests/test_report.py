import json
import shutil
import subprocess

import pytest

from fmrecipes.recipes import RECIPES, all_recipes
from fmrecipes.report import write_report


def _fake_summary(out, name):
    d = out / name
    d.mkdir(parents=True)
    (d / "summary.json").write_text(json.dumps({"ppl.baseline": 11.5, "spread.ppl.baseline": 0.25,
                                                "per_seed.ppl.baseline": [11.25, 11.75], "seeds": [0, 1],
                                                "paper.ppl.baseline": 11.19, "flops.baseline": 2,
                                                "val_loss.miniplm.small": 4.2, "paper.val_loss.miniplm.200M": 3.3,
                                                "val_loss.no_kd.small": 4.3,
                                                "paper.only": 3, "preset": "smoke", "wall_time_s": 1.0,
                                                "machine": "test"}))
    (d / "config.yaml").write_text("lr: 0.1\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.plot([1, 2])
    plt.savefig(d / "curve.png")
    plt.close()


def test_reproduce_all_opens_the_report_with_every_claim(smoke_all):
    md = (smoke_all / "report.md").read_text()
    page = (smoke_all / "report.html").read_text()
    assert md.index("## claims") < md.index("## stability")  # the claims table comes first
    claims_table = md.split("## claims")[1].split("## stability")[0]
    for recipe in all_recipes():
        summary = json.loads((smoke_all / recipe.name / "summary.json").read_text())
        assert f"## {recipe.name}" in md and f"<section id='{recipe.name}'>" in page
        for claim in recipe.claims:
            assert f"| {recipe.name} | {claim.statement} | {claim.paper} |" in claims_table
            verdict = summary[f"claims.{claim.id}.verdict"]
            if claim.testable_if and claim.testable_if[0] in summary:  # a ceiling short of its floor: not testable
                ceiling, floor, gap = claim.testable_if
                if summary[ceiling] - summary[floor] < gap:
                    assert verdict == "not testable"
                    continue
            assert verdict == ("inconclusive" if summary[f"claims.{claim.id}.n_seeds"] < 3 else verdict)
    assert "(n=2) | **inconclusive** |" in claims_table  # sso's smoke runs two seeds: never decides
    assert "color:#8a6d00'>inconclusive</td>" in page
    assert "![final_loss_vs_lr](stability/seed0/final_loss_vs_lr.png)" in md  # the first replicate's plots
    assert "Preset smoke, seeds [0, 1], wall time " in md.split("## sso")[1]
    assert (smoke_all / "data" / "fashionscenes-gallery.png").is_file()  # the FashionScenes gallery, shown
    assert "![fashionscenes-gallery](data/fashionscenes-gallery.png)" in md and "<section id='data'>" in page


def test_report_tables_put_paper_numbers_beside_ours(tmp_path):
    _fake_summary(tmp_path, "sim")
    (tmp_path / "sso").mkdir()
    (tmp_path / "sso" / "failed.json").write_text(json.dumps({"error": "boom <x>"}))
    md, page = write_report(tmp_path)
    text = md.read_text()
    assert "|  | ppl (ours) | ppl (paper) | flops |" in text and "| baseline | 11.5 ± 0.25 | 11.19 | 2 |" in text
    assert "per_seed" not in text and "spread" not in text
    assert "|  | small | 200M |" in text  # one table per 3-part metric: rows = entity, columns = last part
    assert "| miniplm | 4.2 | (paper 3.3) |" in text and "| no_kd | 4.3 |  |" in text
    assert "| only |  | 3 |" in text
    assert "**failed**: boom <x>" in text and "![curve](sim/curve.png)" in text
    assert "## wall times" in text and "| sim | smoke | 1 |" in text and "| total |  | 1 (0.0 min) |" in text
    html = page.read_text()
    assert "<section id='wall-times'>" in html and "<td>sim</td><td>smoke</td><td>1</td>" in html
    assert "boom &lt;x&gt;" in html and "data:image/png;base64," in html and "src='sim/" not in html


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium(tmp_path, *args):
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'prof'}",
           "--enable-logging=stderr", "--v=0", "--window-size=1300,900", *args]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    return res


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (Debian package chromium)")
def test_report_page_loads_in_headless_chromium_and_fits_1300_px(tmp_path):
    """The page loads without console errors and, at 1300 px, does not scroll sideways (long claim rows and wide
    tables wrap or scroll inside themselves); a screenshot of the top of the page is taken."""
    _fake_summary(tmp_path, "sim")
    sso = tmp_path / "sso"
    sso.mkdir()
    long = "ln(fd_tail.sim_phuber_wsid / fd_tail.sim_l2) = 0.4853 ± 0.094 (n=3) " * 6
    (sso / "summary.json").write_text(json.dumps({
        **{f"claims.{c.id}.{k}": v for c in all_recipes()[2].claims for k, v in (
            ("statement", c.statement), ("paper", c.paper * 3), ("metric", long), ("mean", 0.5), ("std", 0.1),
            ("n_seeds", 3), ("verdict", "holds"))},
        **{f"wide.row.col{i}": float(i) for i in range(40)}, "seeds": [0], "preset": "quick"}))
    _, page = write_report(tmp_path)
    probe = page.with_name("probe.html")
    probe.write_text(page.read_text().replace(
        "</body>", "<script>document.body.setAttribute('data-overflow', String("
                   "document.documentElement.scrollWidth - window.innerWidth));</script></body>"))
    res = _chromium(tmp_path, "--dump-dom", probe.as_uri())
    for name in RECIPES:
        assert f'<section id="{name}">' in res.stdout
    assert "<table>" in res.stdout
    console_errors = [l for l in res.stderr.splitlines() if "CONSOLE" in l and "ERROR" in l.upper()]
    assert not console_errors, console_errors
    overflow = int(res.stdout.split('data-overflow="')[1].split('"')[0])
    assert overflow <= 0, f"the page scrolls sideways by {overflow} px at 1300 px"
    shot = tmp_path / "top.png"
    _chromium(tmp_path, f"--screenshot={shot}", page.as_uri())
    assert shot.is_file() and shot.stat().st_size > 1000


def test_a_declared_table_takes_its_keys_whatever_their_dots():
    """A recipe's ReportTable lays out ``<metric>.<entity>`` keys (entities with dots too) with the paper's numbers
    under another metric name; the keys it shows appear nowhere else, and the rest keep the shape rule."""
    from fmrecipes.recipe import ReportTable
    from fmrecipes.report import tables

    summary = {"fd.sim": 2.5, "spread.fd.sim": 0.5, "per_seed.fd.sim": [2, 3], "fd.teacher.nfe35": 1.5,
               "recall.sim": 0.9, "paper.cifar10_fid.sim": 2.06, "paper.cifar10_fid.teacher.nfe35": 1.97,
               "ppl.base": 11.0, "val_loss.small.a": 4.0}
    spec = ReportTable("one step", ("fd", "recall"), {"fd": "cifar10_fid"})
    first, *rest = tables(summary, (spec,))
    assert first.title == "one step" and first.header == ["", "fd", "fd (paper)", "recall"]
    assert first.rows == [["sim", "2.5 ± 0.5", "2.06", "0.9"], ["teacher.nfe35", "1.5", "1.97", ""]]
    shown = [cell for t in rest for row in t.rows for cell in row]
    assert "base" in shown and "small" in shown and "teacher.nfe35" not in shown and "nfe35" not in shown
    assert [t.title for t in tables(summary)][0] == "results"  # undeclared: the shape rule alone


def test_an_entity_prefix_keeps_a_tables_rows_and_leaves_the_rest_to_others():
    """ReportTable.entity_prefix: a metric shared with other keys (params.generator) stays out of the table,
    in the shape-rule tables; a spread that is float rounding of the value shows as 0."""
    from fmrecipes.recipe import ReportTable
    from fmrecipes.report import tables

    summary = {"params.size_x0.5": 10, "params.size_x1": 40, "params.generator": 40, "gap.size_x0.5": 0.5,
               "spread.gap.size_x0.5": 0.25, "gap.size_x1": 0.3, "spread.gap.size_x1": 3e-17}
    first, *rest = tables(summary, (ReportTable("size", ("params", "gap"), entity_prefix="size_x"),))
    assert first.rows == [["size_x0.5", "10", "0.5 ± 0.25"], ["size_x1", "40", "0.3 ± 0"]]
    assert "generator" in [row[0] for t in rest for row in t.rows]


def test_a_claim_that_does_not_hold_shows_its_diagnostics_and_one_that_holds_does_not():
    from fmrecipes.claims import Claim
    from fmrecipes.report import claim_rows

    claim = Claim("c", "a beats b", "1 vs 0", "a", "b", "higher", diagnostics=("probe", "ceiling"))
    summary = {"claims.c.verdict": "fails", "claims.c.mean": -0.5, "claims.c.n_seeds": 3, "claims.c.metric": "a - b",
               "probe": 0.25,
               "spread.probe": 0.01, "a": 1.0, "b": 1.5}
    assert claim_rows(summary, [claim])[0]["why"] == "probe = 0.25 ± 0.01; ceiling = not measured"
    summary["claims.c.verdict"] = "holds"
    assert claim_rows(summary, [claim])[0]["why"] == ""


def test_the_run_line_says_which_seeds_its_wall_time_leaves_out():
    """A run that reused finished replicates times only itself: the report says which seeds it did not count."""
    from fmrecipes.report import _run_line

    base = {"preset": "full", "seeds": [0, 1, 2], "wall_time_s": 4.6, "machine": "m"}
    assert _run_line(base) == "Preset full, seeds [0, 1, 2], wall time 4.6 s, machine: m."
    line = _run_line({**base, "reused_seeds": [0, 2]})
    assert "wall time 4.6 s (not counting seeds [0, 2], finished by an earlier command)" in line
