"""Paired test differences between two settings of one method, per task and averaged over tasks
(the same seed is the same split, initialization and data order), with 95% t-intervals:

    python scripts/paired_settings.py results/lora_lr --method lora --a lr=0.001 --b lr=0.003

`lorabar report` pairs each method's dev-chosen setting with the baseline's; this compares two
fixed settings of the same method, e.g. the learning rates of a widened grid.  Prints b - a.
"""

from __future__ import annotations

import argparse
import tomllib
from collections import defaultdict

from lorabar.harness.report import average_over_tasks, load_results
from lorabar.harness.report.naming import metric_scale
from lorabar.harness.report.stats import t_interval


def _parse(items: str) -> dict:
    return {
        k: tomllib.loads(f"v = {v}")["v"]
        for k, _, v in (item.partition("=") for item in items.split(",") if item)
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--method", required=True)
    ap.add_argument("--a", required=True, help="KEY=VALUE[,KEY=VALUE]: the reference setting")
    ap.add_argument("--b", required=True, help="KEY=VALUE[,KEY=VALUE]: the compared setting")
    args = ap.parse_args()
    want = {"a": _parse(args.a), "b": _parse(args.b)}
    scores: dict = defaultdict(dict)  # (task, side) -> {seed: test x100}
    for r in load_results(args.results):
        c = r["config"]
        if c["method"] != args.method:
            continue
        for side, kv in want.items():
            if all(c.get(k) == v for k, v in kv.items()):
                got = scores[(c["task"], side)]
                if c["seed"] in got:
                    raise SystemExit(
                        f"Ambiguous --{side} {getattr(args, side)}: more than one "
                        f"{args.method} setting matches on {c['task']} seed "
                        f"{c['seed']}; add KEY=VALUE pairs to tell them apart"
                    )
                metric = r["primary_metric"]
                got[c["seed"]] = metric_scale(metric) * r["metrics"]["test"][metric]
    per_seed: dict = defaultdict(list)
    tasks = sorted({t for t, _ in scores})
    print(f"{args.method}: ({args.b}) - ({args.a}), test points, mean [95% t-interval]")
    for t in tasks:
        a, b = scores.get((t, "a"), {}), scores.get((t, "b"), {})
        seeds = sorted(set(a) & set(b))
        if not seeds:
            continue
        diffs = [b[s] - a[s] for s in seeds]
        mean, lo, hi = t_interval(diffs)
        print(f"{t:8s} n={len(diffs)}  {mean:+.2f} [{lo:+.2f}, {hi:+.2f}]")
        for s, d in zip(seeds, diffs):
            per_seed[s].append(d)
    average = average_over_tasks(per_seed)
    if average:
        n_tasks, n, mean, lo, hi = average
        print(f"average ({n_tasks} tasks) n={n}  {mean:+.2f} [{lo:+.2f}, {hi:+.2f}]")


if __name__ == "__main__":
    main()
