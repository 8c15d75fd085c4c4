#!/usr/bin/env bash
# The faithful Table 1 analog, task by task (resumable; finished runs are kept in
# results/faithful/runs and skipped): tune on dev with seed 13, then the dev-chosen setting of
# every method on seeds 13, 21, 42, 87, 100.
# Usage: bash experiments/faithful.sh [DATA_DIR [TASK ...]]   (default: all six tasks)
set -euo pipefail
DATA="${1:-../shared/data}"
shift $(( $# > 0 ? 1 : 0 ))
TASKS=("$@")
[ ${#TASKS[@]} -gt 0 ] || TASKS=(sst2 sst5 trec snli mnli rte)
for task in "${TASKS[@]}"; do
  lorabar grid experiments/faithful_tune.toml --out results/faithful --jobs 2 --data-dir "$DATA" \
      --only task=$task
  python experiments/chosen_grid.py results/faithful experiments/faithful_tune.toml \
      --tasks $task --out experiments/faithful_seeds_$task.toml
  lorabar grid experiments/faithful_seeds_$task.toml --out results/faithful --jobs 2 \
      --data-dir "$DATA"
done
