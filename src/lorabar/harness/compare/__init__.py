"""``lorabar compare``: does a method help here?  The two-stage protocol as one resumable command.

1. **Tune** on the dev split with one seed: a grid from a TOML (``--grid``) or, per method, the
   registry's default grid (`lorabar.harness.run.registry.Method.tune`), every method over
   the baseline's learning rates too (the ``own-lr`` protocol, the default: no method is compared
   at an lr that was not tuned for it; `lorabar.harness.plan.protocol` has the cheaper
   ``baseline-lr``); a setting given on the command line is fixed, not tuned.
2. **Seeds**: every method at its dev-chosen setting
   (`lorabar.harness.report.select()`) on every seed (a method that does not train: the
   first seed only).
3. **Report**: tables, figures and the paired differences to the baseline with 95% intervals
   (``OUT/report/`` and ``OUT/paired.csv``), printed at the end.

Plan, execute, report: `plan_comparison()` checks everything stage 1 needs before anything
is written, `execute()` runs the stages and `report_comparison()` writes the report.
Runs go through
[`run_grid()`][lorabar.harness.execute.grid_runner.run_grid]
into ``OUT/runs``: a rerun
skips every
finished run of the same identity, so an interrupted comparison resumes and a repeated one runs
nothing.  ``dry_run`` prints the plan -- runs, steps, and a time estimate from a measured step
time (the median of finished runs in ``OUT``, else a 3-step probe run) -- and runs nothing.
"""

from __future__ import annotations

from .config import CompareConfig, grid_methods
from .grids import seeds_grid, source_grid, tuning_grid
from .stages import (
    ComparisonPlan,
    compare,
    dry_run_summary,
    execute,
    plan_comparison,
    report_comparison,
)

__all__ = [
    "CompareConfig",
    "ComparisonPlan",
    "compare",
    "dry_run_summary",
    "execute",
    "grid_methods",
    "plan_comparison",
    "report_comparison",
    "seeds_grid",
    "source_grid",
    "tuning_grid",
]
