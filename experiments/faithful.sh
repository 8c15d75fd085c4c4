#!/usr/bin/env bash
# The faithful Table 1 analog, task by task (resumable; finished runs are kept in
# results/faithful/runs and skipped): tune on dev with seed 13, then the dev-chosen setting of
# every method on seeds 13, 21, 42, 87, 100.
# Usage: bash experiments/faithful.sh [DATA_DIR [TASK ...]]   (default: all six tasks)
# Environment: TUNE (stage-1 grid, default experiments/faithful_tune.toml), OUT (results folder,
# default results/faithful), SEEDS (prefix of the stage-2 TOMLs, default
# experiments/faithful_seeds): another grid with the same two-stage protocol reuses this loop.
set -euo pipefail
DATA="${1:-../shared/data}"
TUNE="${TUNE:-experiments/faithful_tune.toml}"
OUT="${OUT:-results/faithful}"
SEEDS="${SEEDS:-experiments/faithful_seeds}"
shift $(( $# > 0 ? 1 : 0 ))
TASKS=("$@")
[ ${#TASKS[@]} -gt 0 ] || TASKS=(sst2 sst5 trec snli mnli rte)
for task in "${TASKS[@]}"; do
  lorabar grid "$TUNE" --out "$OUT" --jobs 2 --data-dir "$DATA" --only task=$task
  python experiments/chosen_grid.py "$OUT" "$TUNE" --tasks $task --out "${SEEDS}_$task.toml"
  lorabar grid "${SEEDS}_$task.toml" --out "$OUT" --jobs 2 --data-dir "$DATA"
done
