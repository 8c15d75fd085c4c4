#!/usr/bin/env bash
# Step 7 of grids/README.md in the order a CPU session can afford: the faithful grid (only
# the new methods' runs are new: sBAR, LoRA+, Flat-LoRA) on the cheap tasks first, then the
# noisy-label grid (SST-2, SNLI; every method at its clean dev-chosen setting), then MNLI and RTE.
# Resumable: finished runs under results/ are skipped.  Usage: bash grids/beyond.sh [DATA_DIR]
set -euo pipefail
DATA="${1:-../shared/data}"
bash grids/faithful.sh "$DATA" trec sst2 snli sst5
lorabar compare --grid grids/faithful_tune.toml --tasks sst2,snli --settings-from results/faithful \
    --label-noise 0.3 --seeds 13,21,42,87,100 --out results/noise --report docs/results/noise \
    --jobs 2 --data-dir "$DATA"
bash grids/faithful.sh "$DATA" mnli rte
