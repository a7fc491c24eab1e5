"""``make bench``'s table: each benchmark's JSON (``benchmarks/*.py``) as rows of (what, measured, target, unit),
printed by ``benchmarks/run_all.py`` and rendered into ``docs/benchmarks.md`` (the ``bench`` block of
:mod:`fmrecipes.report.docs`) from the runs committed under ``results/bench/<run>/``, so no figure there is typed
by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..results import RESULTS
from . import md_table

BENCH = RESULTS / "bench"
MACHINE = "machine.json"
DEMO_TARGET_S = 15 * 60
ORDER = ("machine_peak", "miniplm_score", "lm_throughput", "sso_generate", "sim_sampling", "scenes")  # make bench's
Row = tuple[str, float, float | None, str]  # what, measured, target, unit


def rows(name: str, r: dict) -> list[Row]:
    """(what, measured, target, unit) of one benchmark's JSON."""
    if name == "machine_peak":
        return [("machine peak GEMM, fp32 (GFLOP/s)", round(r["fp32"]["peak_flops_per_s"] / 1e9, 1), None, ""),
                ("machine peak GEMM, bf16 / fp32", r["bf16_vs_fp32_peak"], None, "x"),
                ("machine copy bandwidth (GB/s)", round(r["copy_bytes_per_s"] / 1e9, 1), None, "")]
    if name == "miniplm_score":
        return [("miniplm scoring, eager / plain HF loop", r["ratio_eager_vs_plain_loop"], None, "x"),
                ("miniplm scoring, compiled / plain HF loop", r["ratio_compiled_vs_plain_loop"], r["target_ratio"],
                 "x"),
                ("miniplm scoring, compiled, MFU", r["mfu"]["fmrecipes_compiled"], r["mfu_target"], " of peak"),
                ("miniplm scoring, plain HF loop, MFU", r["mfu"]["plain_hf_loop"], None, " of peak")]
    if name == "lm_throughput":
        out = []
        for s in r["sizes"]:
            d = s["d_model"]
            out += [(f"LM training d={d}, ours / HF Llama", s["ours_vs_hf_llama"]["median"],
                     r["targets"]["ours_vs_hf_llama"], "x"),
                    (f"LM training d={d}, ours, MFU", s["mfu"]["fmrecipes_gpt"], r["mfu_target"], " of peak"),
                    (f"LM training d={d}, HF Llama, MFU", s["mfu"]["hf_llama"], None, " of peak"),
                    (f"LM training d={d}, soft-capped / fused attention", s["softcap50_vs_fused_sdpa"]["median"],
                     r["targets"]["softcap50_vs_fused_sdpa"], "x")]
            if "compiled_ours_vs_compiled_hf_llama" in s:
                out += [(f"LM training d={d}, compiled ours / compiled HF Llama",
                         s["compiled_ours_vs_compiled_hf_llama"]["median"], None, "x"),
                        (f"LM training d={d}, compiled ours (run.compile=true), MFU",
                         s["mfu"]["fmrecipes_gpt_compiled"], r["mfu_target"], " of peak")]
        return out
    if name == "sso_generate":
        return [("SSO sampling, ours / HF generate (flat, as initialised)", r["ratio_vs_hf_generate"], 1.5, "x"),
                ("SSO sampling, ours / HF generate (peaked, trained-like)", r["peaked"]["ratio_vs_hf_generate"], 1.5,
                 "x"),
                ("SSO sampling, peaked: mean nucleus tokens", r["peaked"]["mean_nucleus_tokens"], None, ""),
                ("SSO sampling, flat: share of decoding spent drawing tokens", r["sampling_share"], None, ""),
                ("SSO sampling, decode memory traffic / copy bandwidth", r["bandwidth_utilisation"], None, "")]
    if name == "sim_sampling":
        return [("SIM one step / teacher 35-NFE Heun", r["ratio_one_step_vs_teacher"], None, "x"),
                ("SIM one step, MFU", r["mfu"]["one_step"], None, " of peak")]
    if name == "scenes":
        out = [("FashionScenes generation, scenes/s", r["scenes_per_s"]["generate"], r["target_scenes_per_s"], "/s"),
               ("FashionScenes generation / reading exported PNG", r["ratio_generate_vs_read_png"], None, "x")]
        if "bandwidth_utilisation" in r:  # runs from before it was measured leave the row blank
            out.append(("FashionScenes, sample tensors written / one core's copy bandwidth",
                        r["bandwidth_utilisation"], None, ""))
        return out
    raise KeyError(name)


def demo_row(demo: Path) -> Row | None:
    times = [json.loads(p.read_text()).get("wall_time_s") for p in sorted(demo.glob("*/summary.json"))]
    times = [t for t in times if isinstance(t, (int, float))]
    return ("make demo, six recipes' wall time (s)", round(sum(times)), DEMO_TARGET_S, "s") if times else None


def met(value: float, target: float | None, unit: str) -> str:
    """"yes", "NO" or "-" (no target); a time (unit "s") meets its target from below."""
    if target is None:
        return "-"
    return "yes" if (value <= target if unit == "s" else value >= target) else "NO"


def shown(value: float, unit: str) -> str:
    return f"{value:g}{unit}"


def goal(target: float | None, unit: str) -> str:
    return "-" if target is None else f"{'<=' if unit == 's' else '>='}{target:g}{unit}"


def run_rows(run_dir: Path) -> list[Row]:
    """Every row of one ``run_all.py --out`` directory: its benchmarks' JSON, then the demo's wall time."""
    paths = sorted((p for p in run_dir.glob("*.json") if p.name != MACHINE),
                   key=lambda p: (ORDER.index(p.stem) if p.stem in ORDER else len(ORDER), p.stem))
    from_json = {p.stem: json.loads(p.read_text()) for p in paths}
    table = [row for name, r in from_json.items() for row in rows(name, r)]
    demo = json.loads((run_dir / MACHINE).read_text()).get("demo_row") if (run_dir / MACHINE).is_file() else None
    return table + ([tuple(demo)] if demo else [])


def bench_block(root: Path = BENCH) -> str:
    """The committed runs' table: every row of every run side by side, its target, and whether each run met it;
    above it, each run's machine, commit and date (and how the demo it timed was run)."""
    runs = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not runs:
        return "No benchmark runs are committed yet: `python benchmarks/run_all.py --out results/bench/<run>`."
    info = [json.loads((r / MACHINE).read_text()) if (r / MACHINE).is_file() else {} for r in runs]
    lines = [f"- `{r.name}`: {i.get('machine', '?')}; commit `{str(i.get('commit', '?'))[:10]}`, {i.get('date', '?')}"
             + (f"; the demo {i['demo_note']}" if i.get("demo_note") else "") for r, i in zip(runs, info)]
    by_run = [{row[0]: row for row in run_rows(r)} for r in runs]
    body = []
    for what in dict.fromkeys(w for rows_ in by_run for w in rows_):
        present = [b[what] for b in by_run if what in b]
        _, _, target, unit = present[0]
        body.append([what, *(shown(b[what][1], unit) if what in b else "" for b in by_run), goal(target, unit),
                     " / ".join(met(v, t, u) for _, v, t, u in present)])
    return "\n".join(lines + [""] + md_table(["benchmark", *(f"`{r.name}`" for r in runs), "target", "met"], body))
