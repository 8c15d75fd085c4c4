#!/usr/bin/env bash
# LoRA with a wider lr grid against LoRA+ (see experiments/lora_lr.toml).  Reuses the faithful
# grid's LoRA, LoRA+ and probe-only runs of the same tasks (identical configs: copied, not re-run),
# then the faithful two-stage protocol (experiments/faithful.sh: LoRA's lr tuned on dev with seed
# 13, the dev-chosen lr on the 5 seeds) and the report, paired to the widened LoRA.
# Resumable.  Usage: bash experiments/lora_lr.sh [DATA_DIR]
set -euo pipefail
DATA="${1:-../shared/data}"
OUT=results/lora_lr
mkdir -p $OUT/runs
for task in sst2 sst5 snli trec; do
  for method in lora loraplus zeroshot; do
    cp -n results/faithful/runs/${task}_${method}_s*.json $OUT/runs/
  done
done
TUNE=experiments/lora_lr.toml OUT=$OUT \
    bash experiments/faithful.sh "$DATA" sst2 sst5 snli trec
lorabar report $OUT --out docs/results/lora_lr --baseline lora
