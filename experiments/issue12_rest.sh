#!/usr/bin/env bash
# After experiments/faithful.sh: label noise (SST-2, SNLI; P = 0.3; every method at its clean
# dev-chosen setting, 5 seeds), the Table 4 analog (full GLUE; tune on seed 13, 3 seeds) and
# the practical-setting SAM rows (rho on dev, 3 seeds).  Resumable; results under results/.
set -euo pipefail
DATA="${1:-../shared/data}"
python experiments/chosen_grid.py results/faithful experiments/faithful_tune.toml \
    --tasks sst2,snli --set label_noise=0.3 --out experiments/faithful_noise.toml
lorabar grid experiments/faithful_noise.toml --out results/noise --jobs 2 --data-dir "$DATA"
lorabar grid experiments/glue_tune.toml --out results/glue --jobs 2 --data-dir "$DATA"
python experiments/chosen_grid.py results/glue experiments/glue_tune.toml --seeds 13,21,42 \
    --out experiments/glue_seeds.toml
lorabar grid experiments/glue_seeds.toml --out results/glue --jobs 2 --data-dir "$DATA"
lorabar grid experiments/practical_sam.toml --out results/practical_sam --jobs 2 --data-dir "$DATA"
python experiments/chosen_grid.py results/practical_sam experiments/practical_sam.toml \
    --seeds 13,21,42 --out experiments/practical_sam_seeds.toml
lorabar grid experiments/practical_sam_seeds.toml --out results/practical_sam --jobs 2 \
    --data-dir "$DATA"
