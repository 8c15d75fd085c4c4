#!/usr/bin/env bash
# LoRA with a wider lr grid against LoRA+ (see experiments/lora_lr.toml).  Reuses the faithful
# grid's LoRA, LoRA+ and probe-only runs of the same tasks (identical configs: copied, not re-run),
# tunes LoRA's lr on dev (seed 13), runs the dev-chosen lr on the 5 seeds, and reports paired
# differences to the widened LoRA.  Resumable.  Usage: bash experiments/lora_lr.sh [DATA_DIR]
set -euo pipefail
DATA="${1:-../shared/data}"
OUT=results/lora_lr
mkdir -p $OUT/runs
for task in sst2 sst5 snli trec; do
  for method in lora loraplus zeroshot; do
    cp -n results/faithful/runs/${task}_${method}_s*.json $OUT/runs/
  done
done
lorabar grid experiments/lora_lr.toml --out $OUT --jobs 2 --data-dir "$DATA"
python experiments/chosen_grid.py $OUT experiments/lora_lr.toml --tasks sst2,sst5,snli,trec \
    --out experiments/lora_lr_seeds.toml
lorabar grid experiments/lora_lr_seeds.toml --out $OUT --jobs 2 --data-dir "$DATA"
lorabar report $OUT --out docs/results/lora_lr --baseline lora
