"""Benchmark: the theory lab's simulator on the paper's Fig. 1 grid.

Fig. 1 grid = both problems x 4 noise levels x {SGD, SAM} x 3 seeds, T = 1e5 (48 rows).
Prints the compile time (first call; numba caches it on disk afterwards) and the warm wall time
of the Fig. 1 grid and of the full grid (all 7 methods), median of --repeats runs.

    python benchmarks/bench_toy.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

from lorabar.toy import ToyConfig, compiled, simulate


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    t0 = time.perf_counter()
    simulate(ToyConfig(steps=10, seeds=1), methods=("sgd",))
    print(
        f"numba: {compiled()}; first call (compile or load from cache): "
        f"{time.perf_counter() - t0:.2f} s"
    )
    cfg = ToyConfig()
    for name, methods in (
        ("Fig. 1 grid (sgd, sam)", ("sgd", "sam")),
        ("full grid (7 methods)", None),
    ):
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            res = simulate(cfg, methods=methods) if methods else simulate(cfg)
            times.append(time.perf_counter() - t)
        print(
            f"{name}: {len(res.method)} rows x {cfg.steps} steps: "
            f"median {statistics.median(times):.3f} s (min {min(times):.3f}, "
            f"max {max(times):.3f})"
        )


if __name__ == "__main__":
    main()
