#!/usr/bin/env bash
# SAM, oBAR and nBAR at lr 3e-3 (see experiments/faithful_lr3e-3.toml), the faithful protocol
# task by task, cheapest first; reuses LoRA (lr 3e-3) and probe-only runs from results/lora_lr.
# Resumable.  Usage: bash experiments/faithful_lr3e-3.sh [DATA_DIR]
set -euo pipefail
DATA="${1:-../shared/data}"
OUT=results/faithful_lr3e-3
mkdir -p $OUT/runs
python - <<'PY'
import json, pathlib, shutil
out = pathlib.Path("results/faithful_lr3e-3/runs")
for f in pathlib.Path("results/lora_lr/runs").glob("*.json"):
    c = json.loads(f.read_text())["config"]
    if c["method"] == "zeroshot" or (c["method"] == "lora" and c["lr"] == 3e-3):
        if not (out / f.name).exists():
            shutil.copy2(f, out / f.name)
PY
TUNE=experiments/faithful_lr3e-3.toml OUT=$OUT \
    bash experiments/faithful.sh "$DATA" trec sst2 snli sst5
lorabar report $OUT --out docs/results/faithful_lr3e-3 --baseline lora
