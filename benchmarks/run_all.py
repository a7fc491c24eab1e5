"""``make bench``: run every benchmark, keep each one's JSON under ``--out``, and print every ratio beside its
target (issue 19's targets; a benchmark without one prints "-").

    python benchmarks/run_all.py [--out runs/bench] [--device cpu|cuda] [--demo runs/demo] [--only lm_throughput ...]

``--demo DIR``: also the wall time of the last ``make demo`` written there (its report's recipes' times);
``--demo-note``: how that demo was run, when not as plainly as ``make demo``. Beside the JSON, ``machine.json``
records the machine, commit and date (and the demo's row): commit a run as ``--out results/bench/<run>``, and
``fmrecipes results docs`` renders it into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from fmrecipes.core.dist import single_process
from fmrecipes.recipe import machine
from fmrecipes.report.bench import MACHINE, demo_row, goal, met, rows, shown
from fmrecipes.results import head_commit

HERE = Path(__file__).resolve().parent

# name -> extra arguments on a CPU / on a GPU (bigger batches, so the device, not the launch, is measured)
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "machine_peak": ([], []),
    "miniplm_score": ([], ["--instances", "4096", "--batch", "64"]),
    "lm_throughput": (["--compile"], ["--batch", "32", "--compile"]),  # also run.compile=true's training step
    "sso_generate": ([], []),
    "sim_sampling": ([], ["--batch", "1024"]),
    "scenes": ([], []),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/bench")
    p.add_argument("--device", default=None, help="passed to every benchmark that takes one (default: theirs)")
    p.add_argument("--demo", default="runs/demo")
    p.add_argument("--demo-note", default="", help="how the demo in --demo was run (shown beside its time)")
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
        print(f"{shown(value, unit):>14}  {goal(target, unit):>14}  {met(value, target, unit):>3}  {what}")
    (out / MACHINE).write_text(json.dumps({
        "machine": machine(single_process()), "commit": head_commit(), "date": f"{datetime.now(timezone.utc):%Y-%m-%d}",
        "command": " ".join(["python", *sys.argv]), "demo_row": demo, "demo_note": args.demo_note}, indent=2))
    print(f"\nJSON of each benchmark: {out}/")


if __name__ == "__main__":
    main()
