#!/usr/bin/env bash
# The GPU check of the engine issue, as one script for a session that is lent a CUDA machine:
#  1. `lorabar finetune --device cuda --precision auto` for 20 steps per method (MiniLM on few-shot
#     SST-2 when DATA_DIR is given, else `finetune-lm` on the tiny synthetic copy task): each
#     record's runtime must say cuda and bf16 (fp16 + GradScaler on GPUs without bf16);
#  2. benchmarks/gpu_bench_opt13b.sh (full OPT-1.3B, fp16 + fp32, interleaved).
# Usage (repository root, project installed): bash benchmarks/gpu_check.sh [OUT_DIR] [DATA_DIR]
set -euo pipefail
OUT="${1:-runs/gpu_check}"
DATA="${2:-}"
mkdir -p "$OUT"
for method in lora sam obar nbar; do
  if [ -n "$DATA" ]; then
    lorabar finetune --task sst2 --method "$method" --steps 20 --mu0 20 --device cuda \
      --precision auto --max-eval 256 --data-dir "$DATA" --quiet --out "$OUT/sst2_$method.json"
  else
    lorabar finetune-lm --task synthetic --model tiny --method "$method" --steps 20 --lr 1e-2 \
      --mu0 20 --rho 0.01 --device cuda --precision auto --quiet --out "$OUT/synthetic_$method.json"
  fi
done
python - "$OUT" <<'PY'
import json, pathlib, sys
for p in sorted(pathlib.Path(sys.argv[1]).glob("*.json")):
    r = json.loads(p.read_text())
    rt, m = r["runtime"], r["primary_metric"]
    print(f"{p.name}: {rt['device']} {rt['precision']} ({rt['device_name']}) test {m} "
          f"{r['metrics']['test'][m]:.3f}, step {1e3 * r['timing']['step_time_median_s']:.1f} ms")
PY
bash "$(dirname "$0")/gpu_bench_opt13b.sh" --out "$OUT"
