#!/usr/bin/env bash
# SAM, oBAR and nBAR at lr 3e-3 (see grids/faithful_lr3e-3.toml), the faithful protocol
# task by task, cheapest first; reuses LoRA (lr 3e-3) and probe-only runs from results/lora_lr.
# Resumable.  Usage: bash grids/faithful_lr3e-3.sh [DATA_DIR]
set -euo pipefail
DATA="${1:-../shared/data}"
OUT=results/faithful_lr3e-3
python - <<'PY'
import json
from lorabar.harness.plan.manifest import add_reuses
from lorabar.harness.report.load import result_files
picked = []
for f in result_files("results/lora_lr"):
    c = json.loads(f.read_text())["config"]
    if c["method"] == "zeroshot" or (c["method"] == "lora" and c["lr"] == 3e-3):
        picked.append(f)
add_reuses("results/faithful_lr3e-3", picked)  # references in its manifest.json, not copies
PY
TUNE=grids/faithful_lr3e-3.toml OUT=$OUT \
    bash grids/faithful.sh "$DATA" trec sst2 snli sst5
lorabar report $OUT --out docs/results/faithful_lr3e-3 --baseline lora
