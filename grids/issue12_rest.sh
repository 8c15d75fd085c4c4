#!/usr/bin/env bash
# After grids/faithful.sh: label noise (SST-2, SNLI; P = 0.3; every method at its clean
# dev-chosen setting, 5 seeds), the Table 4 analog (full GLUE, task by task, cheapest first:
# tune on seed 13, then 3 seeds) and the practical-setting SAM rows (rho on dev, 3 seeds).
# Resumable: finished runs under results/ are skipped.  Usage: bash grids/issue12_rest.sh [DATA_DIR]
set -euo pipefail
DATA="${1:-../shared/data}"
lorabar compare --grid grids/faithful_tune.toml --tasks sst2,snli --settings-from results/faithful \
    --label-noise 0.3 --seeds 13,21,42,87,100 --out results/noise --report docs/results/noise \
    --jobs 2 --data-dir "$DATA"
for task in cola stsb mrpc rte; do
  lorabar compare --grid grids/glue_tune.toml --tasks $task --seeds 13,21,42 \
      --out results/glue --report docs/results/glue --jobs 2 --data-dir "$DATA"
done
lorabar compare --grid grids/practical_sam.toml --seeds 13,21,42 --out results/practical_sam \
    --report docs/results/practical --jobs 2 --data-dir "$DATA"
