#!/usr/bin/env bash
# The paper-protocol study with every method's lr grid widened to {5e-4, 1e-3, 2e-3} (issue 37,
# item 3; grids/faithful_paper_lr_wide.toml): tuning on dev with seed 13, then the dev-chosen
# settings on 5 seeds, paired to LoRA; the 5e-4 runs are reused from results/faithful_paper_lr.
# Resumable: a rerun skips every finished run.  Needs a CPU with native bf16 (or set the TOML's
# precision and accept new identities for every run, the 5e-4 ones included).
# Usage: bash grids/faithful_paper_lr_wide.sh [DATA_DIR]
# Environment: JOBS (parallel runs, default 2), THREADS (per run, default 1).
set -euo pipefail
DATA="${1:-../shared/data}"
lorabar compare --grid grids/faithful_paper_lr_wide.toml --seeds 13,21,42,87,100 \
    --out results/faithful_paper_lr_wide --reuse results/faithful_paper_lr \
    --report docs/results/faithful_paper_lr_wide --jobs "${JOBS:-2}" --threads "${THREADS:-1}" \
    --data-dir "$DATA"
