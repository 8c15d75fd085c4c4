"""The mechanism with intervals: does a method change balancedness relative to the baseline?

For every task and method (each at its dev-chosen setting) and every seed both have, the paired
relative difference of the adapters' balancedness to the baseline's run of the same seed (same
split, same initialization):

```
final       100 * (|B|_final(method) / |B|_final(baseline) - 1)         mean |B| over pairs
trajectory  mean over the logged steps of 100 * (|B|_t(method) / |B|_t(baseline) - 1)
layer l     100 * (|B_l|_final(method) / |B_l|_final(baseline) - 1)    one LoRA pair
```

each with a 95% t-interval over seeds and its n (`lorabar.harness.report.stats.t_interval()`).
A claim such as "SAM shrinks |B| below LoRA's" holds here only where the interval excludes 0.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence

from ..run.registry import BASELINE
from ..run.result import MethodUnit

__all__ = ["layer_rows", "paired_rows"]


def _rel(a: float, b: float) -> float:
    return 100.0 * (a / b - 1.0) if b else math.nan


def _curve(run: dict) -> dict[int, float]:
    """``{step: mean |B| over pairs}`` as logged (from the per-pair values if need be)."""
    log = run.get("balancedness") or {}
    means = log.get("mean_abs_B") or [statistics.fmean(row) for row in log.get("abs_B", []) if row]
    return dict(zip(log.get("steps", []), means))


def _trajectory(run: dict, base: dict) -> float:
    """Mean relative difference over the steps both logged."""
    a, b = _curve(run), _curve(base)
    common = sorted(a.keys() & b.keys())
    return statistics.fmean(_rel(a[s], b[s]) for s in common) if common else math.nan


def _pairs(chosen: dict, order: list, baseline: str):
    """``(task, unit, seed, run, baseline run)`` of every paired seed: ``chosen`` is the
    dev selection (`lorabar.harness.report.select()`), ``order`` its keys in the
    report's order; a unit is paired with the baseline of its own context."""
    from ..run.registry import METHODS
    from .paired import pair_by_seed

    for task, unit in order:
        runs, entry = chosen[(task, unit)], METHODS.get(unit.method)
        if unit.method == baseline or entry is None or not entry.trains or not entry.adapters:
            continue
        for seed, r, b in pair_by_seed(runs, chosen.get((task, unit.of(baseline)), [])):
            if r.get("final_mean_abs_B") and b.get("final_mean_abs_B"):
                yield task, unit, seed, r, b


def _row(task: str, unit: MethodUnit, what: str, values: list[float]) -> list[str]:
    """The task, the unit's cells (its label, then its context values), ``what``, n, the mean
    and its 95% interval."""
    from .naming import cells
    from .stats import t_interval

    values = [v for v in values if math.isfinite(v)]
    if not values:
        return [task, *cells(unit), what, "0", "nan", "nan", "nan"]
    mean, lo, hi = t_interval(values)
    return [task, *cells(unit), what, str(len(values)), f"{mean:.2f}", f"{lo:.2f}", f"{hi:.2f}"]


def paired_rows(
    chosen: dict, order: list, baseline: str = BASELINE, columns: Sequence[str] = ()
) -> list[list[str]]:
    """Per task and method: the final and the trajectory-mean relative |B| difference to the
    baseline (percent), paired over seeds, with n and the 95% interval; ``columns``: the names
    of the units' context values (``--allow-mixed``), a column each after the method."""
    final, traj = defaultdict(list), defaultdict(list)
    for task, method, _, r, b in _pairs(chosen, order, baseline):
        final[(task, method)].append(_rel(r["final_mean_abs_B"], b["final_mean_abs_B"]))
        traj[(task, method)].append(_trajectory(r, b))
    rows = [["task", "method", *columns, "measure", "n", "mean_pct", "ci_low", "ci_high"]]
    for key in final:
        rows.append(_row(*key, "final", final[key]))
        rows.append(_row(*key, "trajectory", traj[key]))
    return rows


def layer_rows(
    chosen: dict, order: list, baseline: str = BASELINE, columns: Sequence[str] = ()
) -> list[list[str]]:
    """Per task, method and LoRA pair: the final relative |B_l| difference, paired over seeds
    (``columns``: as `paired_rows()`'s)."""
    per = defaultdict(list)
    for task, method, _, r, b in _pairs(chosen, order, baseline):
        names = r["balancedness"].get("names") or []
        if names != b["balancedness"].get("names") or not r["balancedness"]["abs_B"]:
            continue
        last, base_last = r["balancedness"]["abs_B"][-1], b["balancedness"]["abs_B"][-1]
        for name, x, y in zip(names, last, base_last):
            per[(task, method, name)].append(_rel(x, y))
    rows = [["task", "method", *columns, "layer", "n", "mean_pct", "ci_low", "ci_high"]]
    for (task, method, name), values in per.items():
        rows.append(_row(task, method, name, values))
    return rows
