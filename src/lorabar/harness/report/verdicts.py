"""The verdict rule: one word for each paired interval, the same word everywhere lorabar prints
or writes one (the report, ``paired.csv``, ``compare``'s summary).

For the paired test differences d_1..d_n of a method to the baseline (same seed = same split
and initialization), with the mean and 95 % t-interval [lo, hi] (`t_interval()`)
and a margin m > 0 in the metric's points:

- **identical**: every d_i = 0 (the runs gave the same metric, seed for seed; at any n);
- **better**: lo > 0; **worse**: hi < 0;
- **equivalent**: -m <= lo and hi <= m -- equivalence *shown*: the 95 % interval excludes every
  effect larger than m (two one-sided tests at 2.5 % each, a conservative TOST);
- **inconclusive**: everything else -- the interval covers 0 and reaches past the margin, or
  n < 2 (no interval). It is never "no difference": it cannot tell.

``DEFAULT_MARGIN`` is half a point (0.5 on the reported scale: accuracy x 100, BLEU as is):
below every average gain over LoRA the paper reports for SAM, oBAR and nBAR (+0.9 to +1.3
points, its Table 1), so "equivalent" rules out an effect of the size the paper claims.

Multiplicity: a report with several intervals adjusts the better/worse decisions with Holm's
step-down rule over all of them that have an interval (two-sided paired t-test p-values against
0); a raw "better" or "worse" whose adjusted p-value is 0.05 or more becomes "equivalent" if its
interval lies within the margin, else "inconclusive", in the adjusted column.  Equivalence and
identity are not adjusted (stated in the report).
Reference: S. Holm, "A simple sequentially rejective multiple test procedure", Scand. J.
Statist. 6 (1979); D. Schuirmann, "A comparison of the two one-sided tests procedure ...",
J. Pharmacokinet. Biopharm. 15 (1987).
"""

from __future__ import annotations

import math
import statistics

__all__ = [
    "DEFAULT_MARGIN",
    "VERDICTS",
    "adjusted_verdict",
    "check_margin",
    "holm",
    "p_value",
    "verdict",
]

DEFAULT_MARGIN = 0.5
VERDICTS = ("better", "worse", "equivalent", "inconclusive", "identical")
ALPHA = 0.05


def check_margin(margin: float) -> float:
    """``margin`` as a float, or ``ValueError`` naming the flag."""
    if (
        isinstance(margin, bool)
        or not isinstance(margin, int | float)
        or not math.isfinite(margin)
        or margin <= 0
    ):
        raise ValueError(
            f"Invalid --margin: {margin!r} (expected a positive number of the "
            "metric's points, e.g. 0.5)"
        )
    return float(margin)


def verdict(diffs: list[float], lo: float, hi: float, margin: float = DEFAULT_MARGIN) -> str:
    """The word for paired differences ``diffs`` with 95 % interval ``[lo, hi]`` (the module
    docstring gives the rule)."""
    margin = check_margin(margin)
    if diffs and all(d == 0 for d in diffs):
        return "identical"
    if len(diffs) < 2 or math.isnan(lo) or math.isnan(hi):
        return "inconclusive"
    if lo > 0:
        return "better"
    if hi < 0:
        return "worse"
    if -margin <= lo and hi <= margin:
        return "equivalent"
    return "inconclusive"


def p_value(diffs: list[float]) -> float:
    """Two-sided p-value of the paired t-test of mean 0 (1.0 for identical runs, NaN for
    n < 2; 0.0 for a nonzero constant difference, which no seed contradicts)."""
    if len(diffs) < 2:
        return math.nan
    mean, sd = statistics.fmean(diffs), statistics.stdev(diffs)
    if sd == 0:
        return 1.0 if mean == 0 else 0.0
    from scipy.stats import t

    stat = mean / (sd / math.sqrt(len(diffs)))
    return float(2 * t.sf(abs(stat), len(diffs) - 1))


def holm(pvalues: list[float]) -> list[float]:
    """Holm-adjusted p-values, in the input's order (NaN stays NaN and is not counted)."""
    order = sorted((p, i) for i, p in enumerate(pvalues) if not math.isnan(p))
    adjusted = [math.nan] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p))
        adjusted[i] = running
    return adjusted


def adjusted_verdict(
    raw: str,
    adjusted_p: float,
    lo: float = math.nan,
    hi: float = math.nan,
    margin: float = DEFAULT_MARGIN,
) -> str:
    """The raw word after Holm's rule: better/worse survive only with ``adjusted_p < 0.05``;
    one that does not is "equivalent" when ``[lo, hi]`` lies within ``margin``."""
    if raw in ("better", "worse") and not adjusted_p < ALPHA:
        return "equivalent" if -margin <= lo and hi <= margin else "inconclusive"
    return raw
