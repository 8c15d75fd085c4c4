"""``compare``'s closing summary on the terminal: per task each method's absolute test metric
(mean ± sd, n), its paired difference to the baseline with the 95 % interval and the verdict
word (`.verdicts`), the protocol again, a warning when fewer than 5 seeds make every
interval wide, "at ceiling" when both methods score the metric's maximum, and the choices at
the edge of their grid (`.edges`)."""

from __future__ import annotations

import math

from .edges import edge_lines
from ..run.registry import metric
from ..run.result import RunRecord
from .naming import cells, label_of, metric_scale, task_order
from .paired import holm_family
from .selection import mean_std, select

__all__ = ["FEW_SEEDS", "summary_lines"]

FEW_SEEDS = 5  # the brief's minimum for a paired comparison


def half_width(n: int) -> float:
    """The 95 % t-interval's half-width at ``n`` paired seeds, in standard deviations of the
    paired differences: t_(0.975, n-1) / sqrt(n) (1.24 at n = 5, 8.98 at n = 2)."""
    from scipy.stats import t

    return float(t.ppf(0.975, n - 1) / math.sqrt(n))


def _at_ceiling(runs: list[RunRecord], base: list[RunRecord]) -> bool:
    """Both methods score the metric's maximum (its declaration's ``best``: 1.0 for a fraction,
    BLEU 100) on every seed."""
    name = runs[0]["primary_metric"]
    top = metric(name).best
    return top is not None and all(r["metrics"]["test"][name] == top for r in runs + base)


def summary_lines(
    results: list[RunRecord], rows: list[list[str]], baseline: str, protocol: str | None = None
) -> list[str]:
    """The summary (see the module docstring); ``rows``: `.paired.paired()`'s table."""
    chosen = select(results)
    col = {c: i for i, c in enumerate(rows[0])}
    lines = [protocol] if protocol else []
    ns = []
    for (task, unit), runs in sorted(
        chosen.items(), key=lambda kv: (task_order(kv[0][0]), str(kv[0][1]))
    ):
        metric = runs[0]["primary_metric"]
        mean, sd = mean_std([metric_scale(metric) * r["metrics"]["test"][metric] for r in runs])
        text = f"{task}  {label_of(unit)}: test {metric} {mean:.2f} ± {sd:.2f} (n = {len(runs)})"
        key = [task, *cells(unit)]
        row = next((r for r in rows[1:] if r[: len(key)] == key), None)
        if row is not None:
            word = row[col["verdict"]]
            base = chosen.get((task, unit.of(baseline)), [])
            if base and _at_ceiling(runs, base):
                word += ", at ceiling"
            text += (
                f"; {row[col['mean_diff']]} [{row[col['ci_low']]}, {row[col['ci_high']]}] "
                f"to {label_of(baseline)} (n = {row[col['n']]}): {word}"
            )
            ns.append(int(row[col["n"]]))
        lines.append(text)
    family = holm_family(rows)
    for row in rows[1:]:
        if row[0].startswith("average"):
            lines.append(
                f"{row[0]}  {row[1]}: {row[col['mean_diff']]} [{row[col['ci_low']]}, "
                f"{row[col['ci_high']]}] (n = {row[col['n']]}): {row[col['verdict']]}"
                f" (after Holm over {family}: {row[col['verdict_holm']]})"
            )
    if len(rows) > 1:
        lines.append(
            f"verdicts: margin ±{rows[1][col['margin']]} points; better/worse exclude 0, "
            "equivalent lies within the margin, inconclusive cannot tell"
        )
    few = min(ns) if ns else None
    if few is not None and few < FEW_SEEDS:
        width = (
            "no interval"
            if few < 2
            else f"a 95% interval ±{half_width(few):.1f} standard deviations of the "
            "differences wide"
        )
        lines.append(
            f"warning: n = {few} seeds: {width} (±{half_width(FEW_SEEDS):.2f} at "
            f"n = {FEW_SEEDS}); give --seeds with at least {FEW_SEEDS} for a verdict"
        )
    lines += [f"edge of the grid: {e}" for e in edge_lines(results)]
    return lines
