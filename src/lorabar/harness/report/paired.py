"""Paired differences to a baseline: per task and method over the seeds both have, a 95%
t-interval, and the average over tasks (per seed, then over seeds); each interval's word by
`.verdicts`' rule, raw and after Holm's adjustment over every interval of the table."""

from __future__ import annotations

import statistics
from collections import defaultdict

from ..run.registry import BASELINE, METHODS
from ..run.result import MethodUnit, RunRecord
from .stats import t_interval
from .naming import cells, context_columns, metric_scale, task_order, units_of
from .selection import select
from .verdicts import DEFAULT_MARGIN, adjusted_verdict, check_margin, holm, p_value, verdict


def average_over_tasks(per_seed: dict) -> tuple[int, int, float, float, float] | None:
    """``(n_tasks, n_seeds, mean, low, high)`` of the paired differences averaged over tasks:
    per seed the mean difference over its tasks (``per_seed[seed]`` lists them), then the
    t-interval over seeds; ``None`` when the seeds do not all have the same number of tasks."""
    if not per_seed or len({len(v) for v in per_seed.values()}) != 1:
        return None
    avg = [statistics.fmean(v) for v in per_seed.values()]
    return (len(next(iter(per_seed.values()))), len(avg), *t_interval(avg))


COLUMNS = ("n", "mean_diff", "ci_low", "ci_high", "verdict", "margin", "p_holm", "verdict_holm")


def holm_family(rows: list[list[str]]) -> int:
    """How many intervals of `paired()`'s table (header first) Holm's rule adjusted over."""
    at = rows[0].index("p_holm")
    return sum(r[at] != "–" for r in rows[1:])


def check_pairing(baseline: str, margin: float) -> None:
    """Refuse a baseline that trains nothing (one run per task, no LoRA factors: nothing to pair
    over seeds, no |B| to compare) and a margin that means nothing
    (`.verdicts.check_margin()`)."""
    check_margin(margin)
    entry = METHODS.get(baseline)
    if entry is not None and not entry.trains:
        raise ValueError(
            f"Invalid --baseline {baseline!r}: it trains nothing (one run per task "
            "and no LoRA factors), so there is nothing to pair with; give a method "
            "that trains, e.g. lora"
        )


def pair_by_seed(
    runs: list[RunRecord], base: list[RunRecord]
) -> list[tuple[int, RunRecord, RunRecord]]:
    """``(seed, run, baseline run)`` for every seed both have, in ``runs``' order: the one
    pairing of a method's runs with the baseline's (a paired difference, a |B| ratio)."""
    by_seed = {b["config"]["seed"]: b for b in base}
    return [
        (r["config"]["seed"], r, by_seed[r["config"]["seed"]])
        for r in runs
        if r["config"]["seed"] in by_seed
    ]


def paired(
    results: list[RunRecord], baseline: str = BASELINE, margin: float = DEFAULT_MARGIN
) -> list[list[str]]:
    """Per task and method: the mean paired test difference to ``baseline`` (both at their
    dev-chosen settings) over the seeds both have -- the same seed is the same split and
    initialization -- with a 95% t-interval; then the average over tasks (per seed, the mean
    difference over the tasks that have it, then the t-interval over seeds).  Metrics x100
    (BLEU as is).  Each row ends with its verdict under ``margin`` (`.verdicts.verdict()`),
    the margin, and the Holm-adjusted p-value and verdict over all the table's rows."""
    margin = check_margin(margin)
    chosen = select(results)
    columns = context_columns(results)
    rows = [["task", "method", *columns, *COLUMNS]]
    samples: list[tuple[list[float], float, float]] = []  # differences, interval
    per_method: dict = defaultdict(lambda: defaultdict(list))
    tasks = sorted({t for t, _ in chosen}, key=task_order)
    for m in units_of(chosen):
        if m.method == baseline or not METHODS[m.method].trains:
            continue
        base_unit = m.of(baseline)  # the baseline of the same context
        for t in tasks:
            base, runs = chosen.get((t, base_unit)), chosen.get((t, m))
            if not base or not runs:
                continue
            diffs = _differences(runs, base)
            if not diffs:
                continue
            values = list(diffs.values())
            mean, lo, hi = t_interval(values)
            rows.append(_row(t, m, values, len(values), (mean, lo, hi), margin))
            samples.append((values, lo, hi))
            for seed, d in diffs.items():
                per_method[m][seed].append(d)
        average = average_over_tasks(per_method[m])
        if average:
            n_tasks, n, mean, lo, hi = average
            per_seed = [statistics.fmean(v) for v in per_method[m].values()]
            rows.append(_row(f"average ({n_tasks} tasks)", m, per_seed, n, (mean, lo, hi), margin))
            samples.append((per_seed, lo, hi))
    adjusted = holm([p_value(d) for d, _, _ in samples])
    for row, p, (_, lo, hi) in zip(rows[1:], adjusted, samples):
        row += [
            f"{margin:.10g}",
            "–" if p != p else f"{p:.3f}",
            adjusted_verdict(row[-1], p, lo, hi, margin),
        ]
    return rows


def _differences(runs: list[RunRecord], base: list[RunRecord]) -> dict[int, float]:
    """``{seed: test difference in points}`` over the seeds both have."""
    metric = runs[0]["primary_metric"]
    k = metric_scale(metric)
    return {
        seed: k * r["metrics"]["test"][metric] - k * b["metrics"]["test"][metric]
        for seed, r, b in pair_by_seed(runs, base)
    }


def _row(
    first: str,
    unit: MethodUnit,
    values: list[float],
    n: int,
    interval: tuple[float, float, float],
    margin: float,
) -> list[str]:
    """A row of the table before its Holm columns: the task (or the average), the unit's cells,
    n, the mean and interval, the verdict of ``values`` under ``margin``."""
    mean, lo, hi = interval
    return [
        first,
        *cells(unit),
        str(n),
        f"{mean:.2f}",
        f"{lo:.2f}",
        f"{hi:.2f}",
        verdict(values, lo, hi, margin),
    ]
