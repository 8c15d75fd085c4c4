#!/usr/bin/env bash
# The one GPU check of the scale-out issue: the OPT-1.3B architecture (random init, paper sizes:
# hidden 2048, 24 layers, 32 heads, FFN 8192, vocab 50272), LoRA r=8 on q/v, batch 8 x 128,
# LoRA / nBAR / oBAR / SAM in fp16 (autocast + GradScaler) and fp32, interleaved, 20 rounds.
# Paper (Tables 2/9): BAR 1.03-1.05x LoRA, SAM 3.3-4.4x (FP32). Targets: BAR <= 1.01x and
# SAM <= 2.05x LoRA in fp16.  Results: docs/results/bench/bench_opt-1.3b_cuda.{json,md}.
# Run from the repository root on a CUDA machine with the project installed:
#   bash benchmarks/gpu_bench_opt13b.sh            (about 3-5 minutes on one H100)
set -euo pipefail
lorabar bench --arch opt-1.3b --device cuda --precisions fp16,fp32 --batch-size 8 --seq-len 128 \
    --repeats 20 --warmup 3 --bar-pairs 48,192,768 --out docs/results/bench "$@"
