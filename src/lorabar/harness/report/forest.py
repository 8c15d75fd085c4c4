"""One forest plot across studies: each study's average paired difference to LoRA per method,
with its 95% interval and verdict, zero and the equivalence margin marked, and the paper's own
average gain (`paper_gains`) beside it.

The numbers are read from each study's ``paired.csv`` (its ``average (k tasks)`` rows, which
`paired` wrote), never typed in; the PNG carries them as a text chunk (``lorabar-rows``) so
that a test can tell the figure was drawn from the files as they are now.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from .verdicts import VERDICTS

__all__ = ["Average", "read_averages", "studies_figure"]


@dataclass(frozen=True)
class Average:
    """One ``average`` row of a ``paired.csv``: a method's mean paired difference over ``tasks``
    tasks and ``n`` seeds, its 95% interval and its verdict."""

    study: str
    method: str
    tasks: int
    n: int
    mean: float
    low: float
    high: float
    verdict: str


def _number(text: str, where: str, kind=float):
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not a number") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}: {text!r} is not a finite number")
    return value


def read_averages(text: str, study: str, source: str = "paired.csv") -> list[Average]:
    """The ``average (k tasks)`` rows of a ``paired.csv``'s ``text``; a malformed row is a
    ``ValueError`` naming ``source:line``."""
    rows = list(csv.reader(io.StringIO(text)))
    if (
        not rows
        or rows[0][:6] != ["task", "method", "n", "mean_diff", "ci_low", "ci_high"]
        or "verdict" not in rows[0]
    ):
        raise ValueError(
            f"{source}:1: not a paired-differences table (its header is {rows[0] if rows else []})"
        )
    verdict = rows[0].index("verdict")
    out = []
    for line, row in enumerate(rows[1:], start=2):
        if not row or not row[0].startswith("average ("):
            continue
        where = f"{source}:{line}"
        if len(row) != len(rows[0]):
            raise ValueError(f"{where}: {len(row)} fields, the header has {len(rows[0])}")
        tasks = _number(row[0].removeprefix("average (").split(" ", 1)[0], where, int)
        mean, low, high = (_number(v, where) for v in row[3:6])
        if not low <= mean <= high or row[verdict] not in VERDICTS:
            raise ValueError(
                f"{where}: not an interval with its verdict ({row[3:6]}, {row[verdict]!r})"
            )
        out.append(
            Average(
                study, row[1], tasks, _number(row[2], where, int), mean, low, high, row[verdict]
            )
        )
    return out


def studies_figure(
    averages: list[Average],
    out: str | Path,
    *,
    margin: float = 0.5,
    paper: dict[str, float] | None = None,
) -> Path:
    """``out`` (a PNG): one row per study and method, top to bottom in the given order; the
    interval coloured by its verdict, ``±margin`` shaded, and ``paper`` (method label -> the
    paper's average gain, in points) as a cross on that method's rows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ...guard import png_metadata

    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 0.27 * len(averages)))
    ax.axvspan(-margin, margin, color="C0", alpha=0.08, linewidth=0)
    ax.axvline(0.0, color="0.3", linewidth=0.8)
    marked = _draw_averages(ax, averages, paper or {})
    ax.set_yticks(range(len(averages)))
    ax.set_yticklabels(
        [
            f"{a.study}  {a.method}  ({a.tasks} tasks, n={a.n}): {a.verdict}"
            for a in reversed(averages)
        ],
        fontsize=7,
    )
    ax.set_xlabel(
        "average test difference to LoRA (points), 95% t-interval over seeds\n"
        f"shaded: within ±{margin} (equivalent)"
        + ("; ×: the paper's average gain (its Table 1)" if marked else ""),
        fontsize=8,
    )
    fig.tight_layout()
    path = Path(out)
    rows = json.dumps([asdict(a) for a in averages], sort_keys=True)
    fig.savefig(path, dpi=110, metadata={**png_metadata(), "lorabar-rows": rows})
    plt.close(fig)
    return path


VERDICT_COLORS = {
    "better": "C2",
    "worse": "C3",
    "equivalent": "C0",
    "inconclusive": "0.45",
    "identical": "C0",
}


def _draw_averages(ax, averages: list[Average], paper: dict[str, float]) -> bool:
    """Each average's interval bottom-up, coloured by its verdict, and the paper's gain as a
    cross on its method's rows; whether one was drawn."""
    marked = False
    for y, a in enumerate(reversed(averages)):
        ax.errorbar(
            a.mean,
            y,
            xerr=[[a.mean - a.low], [a.high - a.mean]],
            fmt="o",
            color=VERDICT_COLORS[a.verdict],
            capsize=3,
            markersize=4,
        )
        gain = paper.get(a.method)
        if gain is not None:
            ax.plot(gain, y, "x", color="0.15", markersize=6)
            marked = True
    return marked
