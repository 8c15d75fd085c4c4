"""What each executor costs: start-up and per-run overhead of `lorabar grid` with the local
processes, Ray (a local instance) and submitit (its local job array), on runs that do almost no
work (a tiny model, 1 step), so that the times are the executors' own.

    python benchmarks/bench_executors.py [--sizes 5,20] [--jobs 2] [--data-dir ../shared/data]

For each executor and grid size n (runs), the wall time of the whole command; start-up is the
intercept and per-run overhead the slope of a line through the sizes (with --jobs runs at once,
per-run is per run divided over the jobs). Prints the CPU, the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GRID = """[base]
task = "sst2"
model = "tiny"
steps = 1
max_eval = 16
[grid]
seed = [13, 21, 42, 87, 100]
lr = [{lrs}]
"""


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def _time(executor: list[str], n: int, jobs: int, data: str) -> float:
    folder = Path(tempfile.mkdtemp())
    if n % 5:
        raise SystemExit(f"Invalid --sizes: {n} (multiples of 5: the five few-shot seeds)")
    lrs = ", ".join(f"{1e-3 * (i + 1):g}" for i in range(n // 5))
    (folder / "g.toml").write_text(GRID.format(lrs=lrs))
    cmd = [
        sys.executable,
        "-m",
        "lorabar",
        "grid",
        str(folder / "g.toml"),
        "--out",
        str(folder / "o"),
        "--data-dir",
        data,
        "--jobs",
        str(jobs),
        "--threads",
        "1",
        *executor,
    ]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=folder)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(executor) or 'local'} n={n}: {done.stderr[-1500:]}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="5,20")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--data-dir", default=os.environ.get("LORABAR_DATA_DIR", "../shared/data"))
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    executors = {
        "local": [],
        "ray": ["--executor", "ray"],
        "submitit (local array)": ["--executor", "slurm", "--slurm-cluster", "local"],
    }
    print(
        f"CPU: {_cpu()}, {os.cpu_count()} cores; load average before "
        f"{os.getloadavg()[0]:.2f}; --jobs {args.jobs}, runs of a tiny model, 1 step"
    )
    _time([], sizes[0], args.jobs, args.data_dir)  # the data's caches filled once, not timed
    print(
        f"{'executor':24} "
        + " ".join(f"{f'n={n}':>9}" for n in sizes)
        + f" {'start-up':>9} {'per run':>9}"
    )
    for name, flags in executors.items():
        walls = [_time(flags, n, args.jobs, args.data_dir) for n in sizes]
        slope = (walls[-1] - walls[0]) / (sizes[-1] - sizes[0])
        start = walls[0] - slope * sizes[0]
        print(
            f"{name:24} " + " ".join(f"{w:8.1f}s" for w in walls) + f" {start:8.1f}s {slope:8.1f}s",
            flush=True,
        )
    print(f"load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
