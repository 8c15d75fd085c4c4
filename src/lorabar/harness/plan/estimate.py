"""How long a comparison will take: measured costs and a wall-time model, for ``--dry-run``.

A run's wall time is its training steps plus a fixed cost (``total_s - train_s``: loading,
tokenizing, the probe head, evaluation).  The fixed cost of the first run of a worker process
and of a task and seed (``cold``) is larger than that of the others (``warm``): the first imports
transformers and fills the caches (`lorabar.harness.tasks.content_cache`) that the others
read.  So, for runs ``i`` of ``s_i`` steps and cost factor ``c_i`` (SAM-like methods 2) on
``jobs`` workers, each run using the threads it will use,

    wall ~= (sum_i (s_i * step_s * c_i + warm) + (cold - warm) * min(n, max(jobs, groups))) / jobs

with ``groups`` the distinct (task, seed, model) of the runs.  Costs come from the finished runs
in ``OUT`` (medians; ``cold = warm`` there, their mix already in the median), else from two
3-step probe runs of the first configuration in this process, timed one after the other.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
from collections.abc import Iterable
from pathlib import Path

__all__ = ["Costs", "RunShape", "duration", "measure_costs", "shape_of", "wall_estimate"]


@dataclasses.dataclass(frozen=True)
class Costs:
    """Seconds per training step (cost factor 1) and per run besides its steps."""

    step_s: float
    warm_s: float
    cold_s: float
    source: str  # "finished runs", "probe runs" or "given"

    def __post_init__(self) -> None:
        if min(self.step_s, self.warm_s, self.cold_s) < 0:
            raise ValueError(f"Invalid costs: {self} (negative seconds)")


@dataclasses.dataclass(frozen=True)
class RunShape:
    """What a run's duration depends on: its steps, its cost factor per step (0 for a method
    that does not train) and the (task, seed, model) whose caches it shares."""

    steps: int
    cost: float
    group: tuple


def shape_of(cfg) -> RunShape:
    """The `RunShape` of a run configuration (its own files, if any, in its group)."""
    from ..run.registry import METHODS

    method = METHODS[cfg.method]
    group = (cfg.task, getattr(cfg, "train", None), cfg.seed, cfg.model)
    return RunShape(cfg.steps, method.cost * method.trains, group)


def wall_estimate(runs: list[RunShape], costs: Costs, jobs: int) -> float:
    """The module docstring's model, in seconds (0 for no runs)."""
    if not runs:
        return 0.0
    if jobs < 1:
        raise ValueError(f"Invalid jobs: {jobs} (expected a positive integer)")
    work = sum(r.steps * costs.step_s * r.cost + costs.warm_s for r in runs)
    first = min(len(runs), max(jobs, len({r.group for r in runs})))
    return (work + (costs.cold_s - costs.warm_s) * first) / min(jobs, len(runs))


def _from_finished(files: Iterable[Path], cost_of) -> Costs | None:
    steps, fixed = [], []
    for path in files:
        try:
            r = json.loads(path.read_text())
            steps.append(r["timing"]["step_time_median_s"] / cost_of(r["config"]["method"]))
            fixed.append(r["timing"]["total_s"] - r["timing"]["train_s"])
        except (ValueError, KeyError, TypeError, OSError, ZeroDivisionError):
            continue
    if not steps:
        return None
    return Costs(
        statistics.median(steps),
        statistics.median(fixed),
        statistics.median(fixed),
        "finished runs",
    )


def measure_costs(files: Iterable[Path], probe, cost_of, log=print) -> Costs:
    """`Costs` from the finished results ``files``, else from two 3-step runs of the
    configuration ``probe`` (LoRA) in this process: the first cold, the second warm."""
    found = _from_finished(files, cost_of)
    if found is not None:
        return found
    from ..run.engine import run

    probe = dataclasses.replace(probe, method="lora", steps=3)
    log("compare: timing two 3-step probe runs for the estimate ...")
    first, second = (run(probe, progress=False)["timing"] for _ in range(2))
    return Costs(
        second["step_time_median_s"],
        second["total_s"] - second["train_s"],
        first["total_s"] - first["train_s"],
        "probe runs",
    )


def duration(seconds: float) -> str:
    """``95 s``, ``12 min``, ``3.25 h``: an estimate in the unit a reader plans with."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.2f} h"
