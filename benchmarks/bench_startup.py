"""Start-up time of the command line, against importing torch, measured in one run.

    python benchmarks/bench_startup.py [--repeats 5]

Prints the median wall time of ``python -c "import torch"``, ``lorabar --help``,
``lorabar finetune --help`` and ``lorabar toy fig1`` (warm: numba's cache filled by a first
call), and the ratio of ``--help`` to the torch import (the target: under 0.3).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import tempfile
import time


def _median(cmd: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    py, out = sys.executable, tempfile.mkdtemp()
    cli = [py, "-m", "lorabar.cli"]
    toy = cli + ["toy", "fig1", "--out", out, "--quiet"]
    subprocess.run(toy, check=True, capture_output=True)  # fill numba's cache
    rows = {
        'python -c "import torch"': _median([py, "-c", "import torch"], args.repeats),
        "lorabar --help": _median(cli + ["--help"], args.repeats),
        "lorabar finetune --help": _median(cli + ["finetune", "--help"], args.repeats),
        "lorabar toy fig1 (warm)": _median(toy, args.repeats),
    }
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"CPU: {cpu}, Python {platform.python_version()}")
    for name, seconds in rows.items():
        print(f"{name:<28} {seconds:7.3f} s")
    ratio = rows["lorabar --help"] / rows['python -c "import torch"']
    print(f"lorabar --help / import torch = {ratio:.2f}")


if __name__ == "__main__":
    main()
