"""Statistics of paired differences (torch-free): the t-interval every verdict uses."""

from __future__ import annotations

import math
import statistics

__all__ = ["t_interval"]


def t_interval(diffs: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and ``level`` t-interval of paired differences (NaN bounds for n < 2)."""
    mean = statistics.fmean(diffs)
    if len(diffs) < 2:
        return mean, math.nan, math.nan
    from scipy.stats import t

    half = t.ppf(0.5 + level / 2, len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    return mean, mean - half, mean + half
