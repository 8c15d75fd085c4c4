#!/usr/bin/env bash
# The faithful Table 1 analog, task by task (resumable; finished runs are kept in
# results/faithful/runs and skipped): `lorabar compare` tunes on dev with seed 13, then runs the
# dev-chosen setting of every method on seeds 13, 21, 42, 87, 100 and reports paired intervals.
# Usage: bash grids/faithful.sh [DATA_DIR [TASK ...]]   (default: all six tasks)
# Environment: TUNE (the tuning grid, default grids/faithful_tune.toml), OUT (results
# folder, default results/faithful), REPORT (default docs/results/<OUT's name>): another grid
# with the same two-stage protocol reuses this.
set -euo pipefail
DATA="${1:-../shared/data}"
TUNE="${TUNE:-grids/faithful_tune.toml}"
OUT="${OUT:-results/faithful}"
REPORT="${REPORT:-docs/results/$(basename "$OUT")}"
shift $(( $# > 0 ? 1 : 0 ))
TASKS=("$@")
[ ${#TASKS[@]} -gt 0 ] || TASKS=(sst2 sst5 trec snli mnli rte)
for task in "${TASKS[@]}"; do
  lorabar compare --grid "$TUNE" --tasks "$task" --seeds 13,21,42,87,100 --out "$OUT" \
      --report "$REPORT" --jobs 2 --data-dir "$DATA"
done
