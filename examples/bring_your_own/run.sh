#!/usr/bin/env bash
# One bring-your-own run per recipe on the smoke configs (seconds each), with the data make_data.py writes:
#   bash examples/bring_your_own/run.sh [DIR]     (from the repository root; DIR defaults to runs/byo)
# Prints each command, its exit code and wall time. Swap in your own files and models (README, "Your own data").
set -u
B=${1:-runs/byo}
F=".venv/bin/fmrecipes"
.venv/bin/python examples/bring_your_own/make_data.py "$B/data" || exit 1
D=$B/data O=$B/out
run() {
  echo "\$ $*"
  local s=$(date +%s.%N); "$@" > "$B/last.log" 2>&1; local rc=$?; local e=$(date +%s.%N)
  echo "  exit $rc in $(python3 -c "print(round($e - $s, 1))") s: $(tail -c 200 "$B/last.log" | tr '\r\n' '  ' | sed 's/.*[|]//')"
}
run $F lm train --config configs/lm/smoke.yaml --out $O/lm data.sources=[$D/my.jsonl]
run $F stability run --config configs/stability/smoke.yaml --out $O/stability data.sources=[$D/my.jsonl]
run $F miniplm score --config configs/miniplm/smoke.yaml --out $O/miniplm --model $D/hf_llama --tokenizer model \
  --name teacher data.sources=[$D/my.jsonl]
run $F sso train --config configs/sso/smoke.yaml --out $O/sso --policy $D/chat_model task=prompts \
  prompts=$D/prompts.txt principles=configs/sso/principles.yaml
run $F tips train --config configs/tips/smoke.yaml --out $O/tips train_data=$D/images
run $F altogether pretrain --config configs/altogether/smoke.yaml --out $O/alt pretrain_data=$D/images \
  finetune_data=$D/index.jsonl
run $F altogether finetune --config configs/altogether/smoke.yaml --out $O/alt pretrain_data=$D/images \
  finetune_data=$D/index.jsonl
run $F altogether caption $O/alt --index $D/index.jsonl --out $O/captions.jsonl
run $F sim run --config configs/sim/smoke.yaml --out $O/sim run_toy=false methods=[sim_phuber] \
  images.dataset=$D/folder images.resolution=8 images.teacher_path=$D/ddpm
