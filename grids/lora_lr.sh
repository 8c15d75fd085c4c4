#!/usr/bin/env bash
# LoRA with a wider lr grid against LoRA+ (see grids/lora_lr.toml).  Reuses the faithful
# grid's LoRA, LoRA+ and probe-only runs of the same tasks (identical configs: referenced in
# results/lora_lr/manifest.json, not copied or re-run),
# then the faithful two-stage protocol (grids/faithful.sh: LoRA's lr tuned on dev with seed
# 13, the dev-chosen lr on the 5 seeds) and the report, paired to the widened LoRA.
# Resumable.  Usage: bash grids/lora_lr.sh [DATA_DIR]
set -euo pipefail
DATA="${1:-../shared/data}"
OUT=results/lora_lr
python - <<'PY'
from pathlib import Path
from lorabar.harness.plan.manifest import add_reuses
runs = Path("results/faithful/runs")
add_reuses("results/lora_lr", [f for task in ("sst2", "sst5", "snli", "trec")
                               for method in ("lora", "loraplus", "zeroshot")
                               for f in sorted(runs.glob(f"{task}_{method}_s*.json"))])
PY
TUNE=grids/lora_lr.toml OUT=$OUT \
    bash grids/faithful.sh "$DATA" sst2 sst5 snli trec
lorabar report $OUT --out docs/results/lora_lr --baseline lora
