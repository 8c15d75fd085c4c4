#!/usr/bin/env bash
# The 1000-step check (issue 23): the faithful protocol on SST-2 and SNLI at the paper's 1000
# steps (grids/faithful_1000.toml): LoRA's lr on dev, SAM's and BAR's grids at that lr
# (`--protocol baseline-lr`), the dev-chosen settings on 5 seeds, the paired report.  Resumable.
# Usage: bash grids/faithful_1000.sh [DATA_DIR [TASK ...]]
# Environment: JOBS (parallel runs, default 2), THREADS (per run, default 1).
set -euo pipefail
DATA="${1:-../shared/data}"
shift $(( $# > 0 ? 1 : 0 ))
TASKS=("$@")
[ ${#TASKS[@]} -gt 0 ] || TASKS=(sst2 snli)
for task in "${TASKS[@]}"; do
  lorabar compare --grid grids/faithful_1000.toml --protocol baseline-lr --tasks "$task" \
      --seeds 13,21,42,87,100 --out results/faithful_1000 --report docs/results/faithful_1000 \
      --jobs "${JOBS:-2}" --threads "${THREADS:-1}" --data-dir "$DATA"
done
