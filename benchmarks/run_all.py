"""``make bench``: run every benchmark, keep each one's JSON under ``--out``, and print every ratio beside its
target (issue 19's targets; a benchmark without one prints "-").

    python benchmarks/run_all.py [--out runs/bench] [--device cpu|cuda] [--demo runs/demo] [--only lm_throughput ...]

``--demo DIR``: also the wall time of the last ``make demo`` written there (its report's recipes' times).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEMO_TARGET_S = 15 * 60

# name -> extra arguments on a CPU / on a GPU (bigger batches, so the device, not the launch, is measured)
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "machine_peak": ([], []),
    "miniplm_score": ([], ["--instances", "4096", "--batch", "64"]),
    "lm_throughput": (["--compile"], ["--batch", "32", "--compile"]),  # also run.compile=true's training step
    "sso_generate": ([], []),
    "sim_sampling": ([], ["--batch", "1024"]),
    "scenes": ([], []),
}


def rows(name: str, r: dict) -> list[tuple[str, float, float | None, str]]:
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
                ("SSO sampling, flat: share of decoding spent drawing tokens", r["sampling_share"], None, ""),
                ("SSO sampling, decode memory traffic / copy bandwidth", r["bandwidth_utilisation"], None, "")]
    if name == "sim_sampling":
        return [("SIM one step / teacher 35-NFE Heun", r["ratio_one_step_vs_teacher"], None, "x")]
    if name == "scenes":
        return [("FashionScenes generation, scenes/s", r["scenes_per_s"]["generate"], r["target_scenes_per_s"], "/s")]
    raise KeyError(name)


def demo_row(demo: Path) -> tuple[str, float, float, str] | None:
    times = [json.loads(p.read_text()).get("wall_time_s") for p in sorted(demo.glob("*/summary.json"))]
    times = [t for t in times if isinstance(t, (int, float))]
    return ("make demo, six recipes' wall time (s)", round(sum(times)), DEMO_TARGET_S, "s") if times else None


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/bench")
    p.add_argument("--device", default=None, help="passed to every benchmark that takes one (default: theirs)")
    p.add_argument("--demo", default="runs/demo")
    p.add_argument("--only", nargs="+", choices=list(BENCHMARKS), default=list(BENCHMARKS))
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    gpu = args.device is not None and args.device.startswith("cuda")
    table: list[tuple[str, float, float | None, str]] = []
    for name in args.only:
        cmd = [sys.executable, str(HERE / f"{name}.py"), *BENCHMARKS[name][1 if gpu else 0]]
        if args.device and name != "scenes":
            cmd += ["--device", args.device]
        print(f"[bench] {' '.join(cmd[1:])}", flush=True)
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"[bench] {name} failed (exit {done.returncode}):\n{done.stderr[-2000:]}", flush=True)
            continue
        result = json.loads(done.stdout[done.stdout.index("{"):])
        (out / f"{name}.json").write_text(json.dumps(result, indent=2))
        table += rows(name, result)
    demo = demo_row(Path(args.demo))
    if demo is not None:
        table.append(demo)
    print(f"\n{'measured':>14}  {'target':>14}  met  ratio")
    for what, value, target, unit in table:
        lower_is_better = unit == "s"
        met = "-" if target is None else ("yes" if (value <= target if lower_is_better else value >= target) else "NO")
        shown = f"{value:g}{unit}"
        goal = "-" if target is None else f"{'<=' if lower_is_better else '>='}{target:g}{unit}"
        print(f"{shown:>14}  {goal:>14}  {met:>3}  {what}")
    print(f"\nJSON of each benchmark: {out}/")


if __name__ == "__main__":
    main()
