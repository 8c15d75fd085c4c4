#!/usr/bin/env bash
# The paper's Table 6 protocol per method at 1000 steps (issue 28, item 1): every method tunes
# its own lr over {1e-4, 3e-4, 5e-4} with its own grid on dev (seed 13), then its dev-chosen
# setting runs on 5 seeds, paired to LoRA (grids/faithful_paper_lr.toml).  Resumable: a
# rerun skips every finished run.  STAGE=1 runs only the tuning stage (lorabar grid on the same
# TOML: the same runs as compare's stage 1).
# Usage: bash grids/faithful_paper_lr.sh [DATA_DIR]
# Environment: JOBS (parallel runs, default 2), THREADS (per run, default 1), STAGE (1 | all).
set -euo pipefail
DATA="${1:-../shared/data}"
OUT=results/faithful_paper_lr
JOBS="${JOBS:-2}"
THREADS="${THREADS:-1}"
if [ "${STAGE:-all}" = 1 ]; then
  exec lorabar grid grids/faithful_paper_lr.toml --out $OUT --jobs "$JOBS" \
      --threads "$THREADS" --data-dir "$DATA"
fi
lorabar compare --grid grids/faithful_paper_lr.toml --seeds 13,21,42,87,100 --out $OUT \
    --report docs/results/faithful_paper_lr --jobs "$JOBS" --threads "$THREADS" --data-dir "$DATA"
