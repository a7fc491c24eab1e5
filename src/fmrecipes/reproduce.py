"""``fmrecipes reproduce <recipe|all>``: run recipes' preset comparisons (every seed) and write the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import config as configlib
from .core.fileio import atomic_write_json, ensure_dir
from .errors import FmError, Preempted
from .presets import CONFIG_ROOT, preset_path
from .recipe import SUMMARY
from .recipes import RECIPES, get

PRESETS = ("smoke", "quick", "full")  # every recipe has these; a recipe may add its own (configs/<recipe>/<name>.yaml)


def run_recipe(name: str, preset: str, out: Path) -> dict[str, Any]:
    """Run recipe ``name`` with ``configs/<name>/<preset>.yaml`` in ``out/<name>``; its ``summary.json`` also
    records the preset."""
    recipe = get(name)
    recipe_dir = ensure_dir(out / name)
    cfg = configlib.load(recipe.config, preset_path(name, preset), [f"out={recipe_dir}"])
    summary = {**recipe.run(cfg), "preset": preset}
    atomic_write_json(recipe_dir / SUMMARY, summary)
    (recipe_dir / "failed.json").unlink(missing_ok=True)
    return summary


def data_gallery(out_dir: Path) -> None:
    """The FashionScenes gallery the report shows (skipped, with a warning, without Fashion-MNIST)."""
    from .data.gallery import scenes_gallery
    from .data.scene_config import SceneConfig

    try:
        scenes_gallery(SceneConfig(), "val", 8, ensure_dir(out_dir / "data") / "fashionscenes-gallery.png")
    except FmError as exc:
        print(f"[data] FashionScenes gallery skipped: {exc}")


def reproduce(target: str, preset: str, out: str | Path) -> int:
    """Run one recipe or all; ``all`` also writes the report. Returns the number of failed recipes."""
    if target != "all" and target not in RECIPES:
        raise FmError(f"unknown recipe '{target}'; choose one of {', '.join(RECIPES)} or all")
    if preset not in PRESETS and (target == "all" or not (CONFIG_ROOT / target / f"{preset}.yaml").is_file()):
        raise FmError(f"--preset {preset!r} is unknown; choose one of {', '.join(PRESETS)}, or for one recipe a "
                      f"preset of its own in {CONFIG_ROOT}/<recipe>/")
    out_dir = ensure_dir(out)
    names = list(RECIPES) if target == "all" else [target]
    failures = 0
    for name in names:
        print(f"[{name}] reproducing with preset {preset} ...", flush=True)
        try:
            summary = run_recipe(name, preset, out_dir)
            print(f"[{name}] done in {summary['wall_time_s']} s -> {out_dir / name / SUMMARY}")
        except Preempted:
            raise  # the whole command stops; the same command resumes
        except FmError as exc:
            failures += 1
            atomic_write_json(ensure_dir(out_dir / name) / "failed.json", {"error": str(exc)})
            print(f"[{name}] failed: {exc}")
    if target == "all":
        from .report import write_report

        data_gallery(out_dir)
        md, html = write_report(out_dir)
        print(f"report: {md} and {html}")
    return failures
