#!/usr/bin/env bash
# The 1000-step check (issue 23): the faithful protocol on SST-2 and SNLI at the paper's 1000
# steps. Per task: LoRA lr {1e-3, 3e-3} on dev (seed 13); the paper's Table 6 grids for SAM and
# BAR at that lr (experiments/tune_at_chosen_lr.py); the dev-chosen setting of every method on
# seeds 13, 21, 42, 87, 100 (experiments/chosen_grid.py); the paired report.  Resumable.
# Usage: bash experiments/faithful_1000.sh [DATA_DIR [TASK ...]]
# Environment: JOBS (parallel runs, default 2), THREADS (per run, default 1).
set -euo pipefail
DATA="${1:-../shared/data}"
shift $(( $# > 0 ? 1 : 0 ))
TASKS=("$@")
[ ${#TASKS[@]} -gt 0 ] || TASKS=(sst2 snli)
OUT=results/faithful_1000
JOBS="${JOBS:-2}"
THREADS="${THREADS:-1}"
for task in "${TASKS[@]}"; do
  lorabar grid experiments/faithful_1000_lr.toml --out $OUT --jobs $JOBS --threads $THREADS \
      --data-dir "$DATA" --only task=$task
  python experiments/tune_at_chosen_lr.py $OUT experiments/faithful_1000_lr.toml --task $task \
      --out experiments/faithful_1000_tune_$task.toml
  lorabar grid experiments/faithful_1000_tune_$task.toml --out $OUT --jobs $JOBS \
      --threads $THREADS --data-dir "$DATA"
  python experiments/chosen_grid.py $OUT experiments/faithful_1000_lr.toml --tasks $task \
      --out experiments/faithful_1000_seeds_$task.toml
  lorabar grid experiments/faithful_1000_seeds_$task.toml --out $OUT --jobs $JOBS \
      --threads $THREADS --data-dir "$DATA"
done
lorabar report $OUT --out docs/results/faithful_1000 --baseline lora
