#!/usr/bin/env bash
# The GPU measurements of issue 19 on one CUDA device, in under 8 minutes (each step has its own time limit):
#   1. benchmarks/gpu_checks.py: bf16 autocast under run.precision=auto, SDPA flash/memory-efficient kernels,
#      flex_attention soft-capping against the explicit path, torch.compile of training and scoring;
#   2. LM training tokens/s, ours vs HF Llama in bf16 (two sizes, eager and compiled), scoring instances/s vs the
#      plain loop, SIM one-step vs 35-NFE teacher sampling (benchmarks/run_all.py --device cuda);
#   3. the stability LR sweep's wall time (quick preset) on the GPU.
# Results: $OUT (default runs/gpu): gpu.txt, gpu_checks.json, <benchmark>.json, summary.txt, stability_time.txt.
#   bash benchmarks/gpu.sh            (PY=path/to/python to use another interpreter than .venv's)
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
OUT=${OUT:-runs/gpu}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
status=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
timeout 120 "$PY" benchmarks/gpu_checks.py > "$OUT/gpu_checks.json" || status=1
cat "$OUT/gpu_checks.json"
timeout 240 "$PY" benchmarks/run_all.py --device cuda --out "$OUT" --demo /nonexistent \
  --only lm_throughput miniplm_score sim_sampling | tee "$OUT/summary.txt" || status=1
start=$(date +%s)
timeout 100 "$PY" -m fmrecipes stability run --config configs/stability/quick.yaml --out "$OUT/stability" \
  run.device=cuda run.progress=false > "$OUT/stability.log" 2>&1 || status=1
echo "stability LR sweep (quick preset) on $(head -1 "$OUT/gpu.txt"): $(( $(date +%s) - start )) s" \
  | tee "$OUT/stability_time.txt"
exit $status
