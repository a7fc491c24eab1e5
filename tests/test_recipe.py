"""The recipe contract (every registered recipe), replicates over seeds, resuming, and the package structure."""

import ast
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import get_args

import pytest
from conftest import ROOT, run_cli

from fmrecipes import config as configlib
from fmrecipes.claims import Claim, Verdict
from fmrecipes.core.dist import DistEnv, RunConfig
from fmrecipes.errors import ConfigError
from fmrecipes.recipe import Recipe, replicate
from fmrecipes.recipes import RECIPES, get

SRC = ROOT / "src" / "fmrecipes"


@pytest.mark.parametrize("name", RECIPES)
def test_every_recipe_declares_the_contract(name, smoke_all):
    recipe = get(name)
    assert isinstance(recipe, Recipe) and recipe.name == name and "arXiv" in recipe.paper and recipe.description
    fields = {f.name for f in dataclasses.fields(recipe.config)}
    assert {"out", "seeds", "run"} <= fields
    for preset in ("smoke", "quick", "full"):
        cfg = configlib.load(recipe.config, ROOT / "configs" / name / f"{preset}.yaml")
        assert cfg.seeds and len(set(cfg.seeds)) == len(cfg.seeds)
        if preset == "full":
            assert len(cfg.seeds) >= 3, f"{name} full runs >= 3 seeds"
    assert len(recipe.claims) >= 2 and len({c.id for c in recipe.claims}) == len(recipe.claims)
    assert all(k.startswith("paper.") for k in recipe.paper_numbers)
    summary = json.loads((smoke_all / name / "summary.json").read_text())
    for claim in recipe.claims:  # every claim is wired to metrics the comparison writes
        assert claim.a in summary and claim.b in summary, (claim.id, claim.a, claim.b)
        for key in ("verdict", "mean", "se", "n_seeds", "paper"):
            assert f"claims.{claim.id}.{key}" in summary
        assert summary[f"claims.{claim.id}.verdict"] in get_args(Verdict)
    assert summary["seeds"] == configlib.load(recipe.config, ROOT / "configs" / name / "smoke.yaml").seeds
    assert (smoke_all / name / f"seed{summary['seeds'][0]}" / "summary.json").is_file()
    r = run_cli(name, "run", "--help")
    assert r.returncode == 0 and "--config" in r.stdout


@dataclass
class Inner:
    seed: int = 0
    steps: int = 3


@dataclass
class ToyConfig:
    out: str = "runs/toy"
    inner: Inner = field(default_factory=Inner)
    stages: list[Inner] = field(default_factory=lambda: [Inner(), Inner(steps=5)])
    seed: int = 0
    gain: float = 1.0
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    run: RunConfig = field(default_factory=lambda: RunConfig(device="cpu", progress=False))

    def validate(self) -> None:
        if self.gain == 0:
            raise ConfigError("gain=0 compares nothing")


CALLS: list[int] = []
KILLED: set[int] = set()  # seeds whose replicate is interrupted


def toy_experiment(cfg: ToyConfig, env: DistEnv) -> dict:
    """Method a beats b by ``gain`` plus seed noise; seeds in KILLED die (a killed run)."""
    assert env.device.type == "cpu" and not env.progress  # the environment comes from the config's run section
    CALLS.append(cfg.seed)
    if cfg.seed in KILLED:
        raise KeyboardInterrupt
    noise = 0.1 * ((cfg.seed * 7919) % 5 - 2)
    return {"score.a": cfg.gain + noise, "score.b": 0.0, "lr.a": ">= 0.3", "lr.b": 0.1}


TOY = Recipe(name="toy", paper="Toy (arXiv 0000.00000)", description="a toy", config=ToyConfig,
             run_experiment=toy_experiment,
             claims=(Claim("a_beats_b", "a beats b", "1.0 vs 0.0", "score.a", "score.b", "higher"),
                     Claim("lr", "a raises the LR", "1.5x", "lr.a", "lr.b", "higher", "log_ratio")),
             paper_numbers={"paper.score.a": 1.0})


def test_replicate_reseeds_everything_and_nests_its_output():
    cfg = ToyConfig(out="o", seed=1, inner=Inner(seed=1), seeds=[4, 5])
    rep = replicate(cfg, 5)
    assert rep.seed == 5 and rep.inner.seed == 5 and [s.seed for s in rep.stages] == [5, 5]
    assert rep.inner.steps == 3 and rep.stages[1].steps == 5 and rep.seeds == [5] and rep.out == str(Path("o/seed5"))
    assert cfg.inner.seed == 1 and cfg.seeds == [4, 5]  # the original is untouched


def test_run_writes_means_spreads_verdicts_and_resumes(tmp_path):
    CALLS.clear()
    cfg = ToyConfig(out=str(tmp_path / "toy"))
    KILLED.add(2)
    with pytest.raises(KeyboardInterrupt):
        TOY.run(cfg)
    KILLED.clear()
    assert CALLS == [0, 1, 2] and not (tmp_path / "toy" / "summary.json").exists()
    CALLS.clear()
    summary = TOY.run(cfg)
    assert CALLS == [2]  # the finished replicates are reused, the killed one is redone
    assert summary["reused_seeds"] == [0, 1]  # and the wall time says it does not count them
    values = [1.0 + 0.1 * ((s * 7919) % 5 - 2) for s in (0, 1, 2)]
    assert summary["per_seed.score.a"] == pytest.approx(values)
    assert summary["score.a"] == pytest.approx(sum(values) / 3) and "spread.score.a" in summary
    assert summary["claims.a_beats_b.verdict"] == "holds" and summary["claims.a_beats_b.n_seeds"] == 3
    assert summary["claims.lr.verdict"] == "inconclusive" and summary["claims.lr.n_seeds"] == 0  # censored
    assert summary["paper.score.a"] == 1.0 and summary["seeds"] == [0, 1, 2]
    assert summary["wall_time_s"] >= 0 and "threads" in summary["machine"] and "preset" not in summary
    assert json.loads((tmp_path / "toy" / "summary.json").read_text()) == summary
    CALLS.clear()
    worse = TOY.run(dataclasses.replace(cfg, gain=-1.0, seeds=[0, 1]))
    assert CALLS == [0, 1] and worse["reused_seeds"] == []  # a changed config re-runs its replicates
    assert worse["claims.a_beats_b.verdict"] == "inconclusive"  # two seeds never decide
    worse = TOY.run(dataclasses.replace(cfg, gain=-1.0))
    assert worse["claims.a_beats_b.verdict"] == "fails"


def test_bad_seed_lists_are_one_line_errors(tmp_path):
    from fmrecipes.errors import ConfigError

    for seeds in ([], [1, 1], [0.5]):
        with pytest.raises(ConfigError, match="must be a non-empty list of distinct integers"):
            TOY.run(ToyConfig(out=str(tmp_path), seeds=seeds))


def _imports(path: Path) -> set[str]:
    """Every fmrecipes module ``path`` imports (module level or inside functions), as dotted names."""
    package = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found |= {base} | {f"{base}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {m for m in found if m.startswith("fmrecipes")}


def _unit(module: str) -> str:
    """The structural unit of a module: fmrecipes.<top-level module or package>."""
    return ".".join(module.split(".")[:2])


def test_structure_has_no_import_circle_and_core_knows_no_recipe():
    modules = {p: _imports(p) for p in SRC.rglob("*.py")}
    units = {_unit("fmrecipes." + ".".join(p.relative_to(SRC).with_suffix("").parts)) for p in modules}
    recipes = {f"fmrecipes.{r}" for r in RECIPES}
    edges: dict[str, set[str]] = {}
    for path, imported in modules.items():
        src = _unit("fmrecipes." + ".".join(path.relative_to(SRC).with_suffix("").parts))
        edges.setdefault(src, set()).update(_unit(m) for m in imported if _unit(m) in units and _unit(m) != src)
        rel = path.relative_to(SRC).parts
        if rel[0] == "core":
            assert not {_unit(m) for m in imported} & (recipes | {"fmrecipes.data", "fmrecipes.cli"}), path
        if rel[0] != "__main__.py":
            assert "fmrecipes.cli" not in imported, f"{path} imports the entry point"
        if src in recipes:
            assert not {_unit(m) for m in imported} & (recipes - {src}), f"{path} imports another recipe"

    def cycle_from(node: str, stack: list[str]) -> list[str] | None:
        if node in stack:
            return stack[stack.index(node):] + [node]
        for nxt in sorted(edges.get(node, ())):
            found = cycle_from(nxt, stack + [node])
            if found:
                return found
        return None

    for unit in sorted(edges):
        assert cycle_from(unit, []) is None, " -> ".join(cycle_from(unit, []))


def test_run_validates_a_config_built_in_code_once_before_any_replicate(tmp_path):
    CALLS.clear()
    with pytest.raises(ConfigError, match="gain=0"):
        TOY.run(ToyConfig(out=str(tmp_path / "toy"), gain=0.0))
    assert CALLS == []


def test_no_two_modules_import_each_other():
    """Module-level import cycles inside a package (miniplm's score and scorer once did) are a design smell: one
    module, or one seam below both. A package's ``__init__`` is not counted (it re-exports its modules)."""
    names = {".".join(p.relative_to(SRC.parent).with_suffix("").parts): p for p in SRC.rglob("*.py")}
    modules = {m for m in names if not m.endswith("__init__")}
    edges = {m: {i for i in _imports(names[m]) if i in modules and i != m} for m in modules}
    pairs = sorted((a, b) for a in edges for b in edges[a] if a in edges.get(b, ()) and a < b)
    assert pairs == []
