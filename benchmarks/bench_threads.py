"""Step time under contention: torch threads x OpenMP wait policy x competing busy processes.

    python benchmarks/bench_threads.py [--steps 12] [--competitors 0,1,2] [--out FILE.json]

Each cell runs in a fresh interpreter (OMP_WAIT_POLICY must be set before torch starts its
pool): MiniLM-L6 (the harness' default model) with LoRA r=8 on query/value, AdamW, batch 16 x 64
tokens, fp32, median of ``--steps`` steps after 3 warm-up steps.  A competitor is a busy Python
loop (``while True: pass``) pinned to nothing, like a test suite or another job on a laptop.
Prints a markdown table; quote the CPU (printed first) with it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

CELL = r"""
import os, statistics, sys, time, torch
from lorabar.harness.models.encoder_model import build_model
threads = int(sys.argv[1])
torch.set_num_threads(threads)
torch.manual_seed(0)
model, tok = build_model("minilm", 2, method="lora")
params = [p for p in model.parameters() if p.requires_grad]
opt = torch.optim.AdamW(params, lr=1e-4)
ids = torch.randint(1000, 20000, (16, 64))
labels = torch.randint(0, 2, (16,))
batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
times = []
for i in range(int(sys.argv[2]) + 3):
    t = time.perf_counter()
    model(**batch).loss.backward(); opt.step(); opt.zero_grad()
    times.append(time.perf_counter() - t)
print(threads, statistics.median(times[3:]))
"""


def cell(threads: str, policy: str, steps: int) -> tuple[int, float]:
    env = {**os.environ, "OMP_WAIT_POLICY": policy} if policy != "default" else dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)
    if policy == "default":
        env.pop("OMP_WAIT_POLICY", None)
    out = subprocess.run(
        [sys.executable, "-c", CELL, threads, str(steps)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return int(out[-2]), float(out[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--competitors", default="0,1,2")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    from lorabar.harness.run.runtime import cpu_name

    print(f"CPU: {cpu_name()}, {os.cpu_count()} logical CPUs, torch threads per cell as listed")
    rows = []
    for n in [int(c) for c in args.competitors.split(",")]:
        busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
        time.sleep(2.0)  # let the load average see them
        try:
            for threads in ("1", "2"):
                for policy in ("default", "PASSIVE"):
                    resolved, step = cell(threads, policy, args.steps)
                    rows.append(
                        {
                            "competitors": n,
                            "threads": threads,
                            "resolved": resolved,
                            "omp_wait_policy": policy,
                            "step_s": step,
                        }
                    )
                    print(
                        f"competitors {n}  threads {threads:>4} ({resolved})  {policy:>8}  "
                        f"{step:.3f} s/step",
                        flush=True,
                    )
        finally:
            for b in busy:
                b.kill()
    print("\n| competitors | threads | OMP_WAIT_POLICY | s/step | vs best of the row |")
    print("|---|---|---|---|---|")
    for n in sorted({r["competitors"] for r in rows}):
        group = [r for r in rows if r["competitors"] == n]
        best = min(r["step_s"] for r in group)
        for r in group:
            print(
                f"| {n} | {r['threads']} ({r['resolved']}) | {r['omp_wait_policy']} | "
                f"{r['step_s']:.3f} | {r['step_s'] / best:.2f}x |"
            )
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"cpu": cpu_name(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
