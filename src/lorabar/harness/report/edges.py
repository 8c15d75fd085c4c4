"""Choices at the edge of their grid: a dev-chosen value that is the smallest or largest value
its task and method tried, with the next value to try.

For a tuned numeric setting h (lr, rho, mu0, ... -- `TUNED`) of which a task and
method tried at least two values v_1 < ... < v_k, the chosen value is at an edge when it is v_1
or v_k; the suggestion continues the grid's geometric step: v_k^2 / v_(k-1) above it,
v_1^2 / v_2 below it (lr 1e-4, 3e-4, 5e-4 -> 8.33e-4).  An optimum outside the grid makes a
verdict a property of the grid; the report and ``compare`` say so, they do not widen it.
"""

from __future__ import annotations

from collections import defaultdict

from .load import TUNED
from ..run.result import MethodUnit, RunRecord
from .naming import METHOD_ORDER, label_of, task_order
from .selection import select

__all__ = ["edge_lines", "edges"]


def _numeric(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def edges(results: list[RunRecord]) -> list[dict]:
    """``[{"task", "method", "name", "value", "side", "tried", "next"}]`` for every chosen
    value at the edge of what its task and method tried (ordered by task, method, name;
    ``method``: the `lorabar.harness.run.result.MethodUnit`)."""
    tried: dict = defaultdict(lambda: defaultdict(set))
    for r in results:
        for name in TUNED:
            value = r["config"].get(name)
            if _numeric(value):
                tried[(r["config"]["task"], r.unit)][name].add(value)
    found = []
    for (task, unit), runs in select(results).items():
        for name, values in sorted(tried[(task, unit)].items()):
            value = runs[0]["config"].get(name)
            grid = sorted(values)
            if len(grid) < 2 or value not in (grid[0], grid[-1]):
                continue
            side = "largest" if value == grid[-1] else "smallest"
            inner = grid[-2] if side == "largest" else grid[1]
            step = value / inner if inner else None
            found.append(
                {
                    "task": task,
                    "method": unit,
                    "name": name,
                    "value": value,
                    "side": side,
                    "tried": grid,
                    "next": value * step if step and step > 0 else None,
                }
            )

    def order(m: MethodUnit) -> int:
        return METHOD_ORDER.index(m.method) if m.method in METHOD_ORDER else len(METHOD_ORDER)

    return sorted(
        found,
        key=lambda e: (task_order(e["task"]), order(e["method"]), str(e["method"]), e["name"]),
    )


def edge_lines(results: list[RunRecord]) -> list[str]:
    """One sentence per edge: ``sst2 / LoRA: lr = 0.0005 is the largest of 0.0001, 0.0003,
    0.0005 tried; next: 0.000833``."""
    return [
        f"{e['task']} / {label_of(e['method'])}: {e['name']} = {e['value']:g} is the "
        f"{e['side']} of {', '.join(f'{v:g}' for v in e['tried'])} tried"
        + (f"; next: {e['next']:.3g}" if e["next"] is not None else "")
        for e in edges(results)
    ]
