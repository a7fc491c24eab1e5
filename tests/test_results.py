"""Committed results (results/) and the documentation tables generated from them (report.docs)."""

import json

import pytest

from fmrecipes import report
from fmrecipes.claims import aggregate, judge
from fmrecipes.errors import FmError
from fmrecipes.recipes import get
from fmrecipes.report.docs import committed_forest, render_docs, render_text
from fmrecipes.results import RESULTS, provenance, publish, reference


def test_committed_tables_are_what_the_committed_summaries_give():
    """Every generated block in README.md and docs/ equals its rendering from results/: no number is typed by hand
    or stale (`fmrecipes results docs` rewrites them)."""
    assert render_docs(check=True) == []
    assert any((RESULTS / name / "summary.json").is_file() for name in ("stability", "miniplm", "sso", "tips",
                                                                         "altogether", "sim"))


def test_committed_results_carry_every_seed_and_their_provenance():
    """results/<recipe>/ holds the full preset, results/<recipe>/<preset>/ a recipe's own preset (never smoke or
    quick): each with every seed's summary, three or more seeds, and the provenance of the run."""
    found = [(p.parent.name, "full") for p in RESULTS.glob("*/summary.json")]
    found += [(p.parent.parent.name, p.parent.name) for p in RESULTS.glob("*/*/summary.json")
              if not p.parent.name.startswith("seed")]
    assert ("tips", "long") in found
    for name, preset in found:
        summary, prov = reference(name, preset=preset), provenance(name, preset=preset)
        where = RESULTS / name if preset == "full" else RESULTS / name / preset
        assert summary["preset"] == prov["preset"] == preset not in ("smoke", "quick") and len(summary["seeds"]) >= 3
        for s in summary["seeds"]:
            assert (where / f"seed{s}" / "summary.json").is_file()
        assert prov["commit"] and prov["command"] and prov["machine"] == summary["machine"]
        assert not list(where.rglob("*.safetensors"))  # no checkpoints


def _claims_summary(name, diffs, preset="full"):
    """A recipe's summary whose every claim has the paired differences ``diffs`` (one per seed)."""
    recipe = get(name)
    reps = {}
    for s, d in enumerate(diffs):
        reps[s] = {}
        for c in recipe.claims:
            reps[s][c.a], reps[s][c.b] = (1.0 + d, 1.0) if c.scale == "difference" else (2.0 ** d, 1.0)
    return {**aggregate(reps), **judge(recipe.claims, reps), "seeds": list(reps), "preset": preset,
            "wall_time_s": 1.0, "reused_seeds": [1], "machine": "test"}, reps


def _run_dir(tmp_path, name, diffs, preset="full"):
    summary, reps = _claims_summary(name, diffs, preset)
    d = tmp_path / "run" / name
    for s, r in reps.items():
        (d / f"seed{s}").mkdir(parents=True)
        (d / f"seed{s}" / "summary.json").write_text(json.dumps(r))
    (d / "summary.json").write_text(json.dumps(summary))
    (d / "config.yaml").write_text("seeds: [0, 1, 2]\n")
    (d / "seed0" / "model.safetensors").write_text("weights")
    return tmp_path / "run"


def test_publish_copies_summaries_and_provenance_not_checkpoints(tmp_path):
    run = _run_dir(tmp_path, "sso", [0.3, 0.2, 0.25])
    dest = publish("sso", run, "fmrecipes reproduce sso --preset full --out run", "abc123", root=tmp_path / "res")
    assert json.loads((dest / "summary.json").read_text()) == json.loads((run / "sso" / "summary.json").read_text())
    assert sorted(p.parent.name for p in dest.glob("seed*/summary.json")) == ["seed0", "seed1", "seed2"]
    assert not list(dest.rglob("*.safetensors"))
    prov = provenance("sso", tmp_path / "res")
    assert prov["commit"] == "abc123" and prov["command"].startswith("fmrecipes reproduce sso") and prov["seeds"] == [
        0, 1, 2]
    assert prov["wall_time_s"] == 1.0 and prov["reused_seeds"] == [1]  # the wall time leaves seed 1 out
    quick = _run_dir(tmp_path / "q", "sso", [0.1], preset="quick")
    with pytest.raises(FmError, match="preset 'quick'"):
        publish("sso", quick, "x", "abc", root=tmp_path / "res")
    (run / "sso" / "seed2" / "summary.json").unlink()
    with pytest.raises(FmError, match=r"seeds \[2\]"):
        publish("sso", run, "x", "abc", root=tmp_path / "res")


def test_a_recipes_own_preset_is_published_beside_full_and_rendered_in_its_own_block(tmp_path):
    """A preset of a recipe's own (tips long) goes to results/<recipe>/<preset>/ and leaves the full results as
    they were; its block ``<recipe>/<preset>`` renders it, and its default command names the preset."""
    res = tmp_path / "res"
    publish("sso", _run_dir(tmp_path / "f", "sso", [0.3, 0.2, 0.25]), "cmd-full", "abc", root=res)
    long_run = _run_dir(tmp_path / "l", "sso", [-0.3, -0.2, -0.25], preset="long")
    dest = publish("sso", long_run, None, "def", root=res)
    assert dest == res / "sso" / "long" and reference("sso", res, "long")["preset"] == "long"
    assert reference("sso", res)["preset"] == "full" and provenance("sso", res)["command"] == "cmd-full"
    assert provenance("sso", res, "long")["command"] == f"fmrecipes reproduce sso --preset long --out {long_run}"
    claim = get("sso").claims[0]
    assert reference("sso", res)[f"claims.{claim.id}.verdict"] == "holds"
    assert reference("sso", res, "long")[f"claims.{claim.id}.verdict"] == "fails"
    doc = "<!-- results:sso/long -->\n<!-- /results:sso/long -->\n<!-- results:sso -->\n<!-- /results:sso -->\n"
    out = render_text(doc, res)
    long_block, full_block = out.split("<!-- results:sso -->")
    assert "at commit `def`" in long_block and "`results/sso/long/`" in long_block and "**fails**" in long_block
    assert "at commit `abc`" in full_block and "`results/sso/`" in full_block and "**holds**" in full_block
    assert "No long-preset results are committed for `stability`" in render_text(
        "<!-- results:stability/long -->\n<!-- /results:stability/long -->\n", res)
    with pytest.raises(FmError, match="unknown results block"):
        render_text("<!-- results:nope/long -->\n<!-- /results:nope/long -->", res)


def test_reproduce_takes_a_recipes_own_preset_only_for_that_recipe(tmp_path, monkeypatch):
    from fmrecipes import reproduce as rep

    ran = []
    monkeypatch.setattr(rep, "run_recipe", lambda name, preset, out: ran.append((name, preset)) or {"wall_time_s": 0})
    assert rep.reproduce("tips", "long", tmp_path) == 0 and ran == [("tips", "long")]
    for target, preset in (("sso", "long"), ("all", "long"), ("tips", "nope")):
        with pytest.raises(FmError, match=f"--preset '{preset}' is unknown"):
            rep.reproduce(target, preset, tmp_path)
    assert ran == [("tips", "long")]


def test_blocks_are_rendered_from_the_summaries_and_stale_ones_replaced(tmp_path):
    publish("sso", _run_dir(tmp_path, "sso", [0.3, 0.2, 0.25]), "cmd", "abc123", root=tmp_path / "res")
    doc = ("intro\n<!-- results:claims -->\n| stale | 1 |\n<!-- /results:claims -->\nmiddle\n"
           "<!-- results:sso -->\n<!-- /results:sso -->\nend\n")
    out = render_text(doc, tmp_path / "res")
    claims = out.split("<!-- results:claims -->")[1].split("<!-- /results:claims -->")[0]
    assert "stale" not in claims and out.startswith("intro\n") and out.endswith("end\n") and "middle" in out
    for claim in get("sso").claims:
        assert f"| sso | {claim.statement} |" in claims
    assert "**holds**" in claims and "No full-preset results committed yet for `stability`" in claims
    recipe = out.split("<!-- results:sso -->")[1]
    assert "at commit `abc123`" in recipe and "| claim | paper |" in recipe
    assert render_text(out, tmp_path / "res") == out  # rendering is idempotent
    with pytest.raises(FmError, match="unknown results block"):
        render_text("<!-- results:nope -->\n<!-- /results:nope -->", tmp_path / "res")
    assert committed_forest(tmp_path / "forest.png", tmp_path / "res").is_file()


def test_report_shows_the_committed_verdict_and_whether_this_run_agrees(tmp_path, monkeypatch):
    committed, _ = _claims_summary("sso", [0.3, 0.2, 0.25])
    monkeypatch.setattr(report, "reference", lambda name: committed if name == "sso" else None)
    quick, _ = _claims_summary("sso", [-0.1], preset="quick")
    (tmp_path / "sso").mkdir()
    (tmp_path / "sso" / "summary.json").write_text(json.dumps(quick))
    md, page = report.write_report(tmp_path)
    text = md.read_text()
    for claim in get("sso").claims:  # quick points against the committed full run, which decides the claim
        row = next(line for line in text.splitlines() if line.startswith(f"| sso | {claim.statement} |"))
        full = "holds" if claim.direction == "higher" else "fails"
        mean = "0.25 ± 0.05" if claim.scale == "difference" else "0.1733 ± 0.035"
        assert "| **inconclusive** | " in row and row.endswith(f"| {full}: {mean} (n=3) | no |"), row
    assert (tmp_path / "claims_forest.png").is_file() and "![claims forest plot](claims_forest.png)" in text
    assert "committed full preset (results/)" in page.read_text()
