"""A comparison's plan, execution and report: `plan_comparison()` checks everything stage 1
needs before anything is written, `execute()` runs the stages, `report_comparison()` writes the
report, `compare()` does all three."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..run.registry import METHODS
from .config import HINT, CompareConfig
from .grids import check_with_finished, planned_tasks, seeds_grid, source_grid, tuning_grid

__all__ = [
    "ComparisonPlan",
    "compare",
    "dry_run_summary",
    "execute",
    "plan_comparison",
    "report_comparison",
]


@dataclasses.dataclass(frozen=True)
class ComparisonPlan:
    """What a comparison will do, built and checked before anything runs: its stage-1 runs
    (every identity computed, own files parsed, models available, comparable with the finished
    runs in ``OUT``), those still to run, the learning rates each method is tuned over, and the
    torch threads a run resolves to."""

    cc: CompareConfig
    configs: list
    pending: list
    lrs: dict
    data_dir: str | None
    threads_each: int
    jobs: int = 1

    def todo(self, configs: list) -> list:
        """Of ``configs``, those without a finished result in ``OUT/runs`` (or referenced from
        it, or in a ``--reuse`` folder)."""
        from ..plan.grid import done_here, finished_in, identity_of
        from ..plan.manifest import reused_files

        out, reused = Path(self.cc.out), reused_files(self.cc.out)
        fixed = [dataclasses.replace(c, threads=c.threads or self.threads_each) for c in configs]
        return [
            c
            for c in fixed
            if not done_here(out, identity_of(c), reused)
            and finished_in(self.cc.reuse, identity_of(c)) is None
        ]


def plan_comparison(
    cc: CompareConfig, *, jobs: int = 1, threads: int = 0, data_dir: str | None = None
) -> ComparisonPlan:
    """Stage 1 planned and checked (see `ComparisonPlan`); nothing is written."""
    from ..models.available import check_model_available
    from ..plan.grid import expand
    from ..execute.choice import threads_per_run
    from ..plan.protocol import check_record, tuned_lrs

    check_record(cc)
    configs = expand(source_grid(cc) if cc.settings_from else tuning_grid(cc), data_dir=data_dir)
    for model in sorted({c.model for c in configs}):
        check_model_available(model)
    threads_each = threads_per_run(threads, jobs)  # as run_grid resolves it
    check_with_finished(
        Path(cc.out), [dataclasses.replace(c, threads=c.threads or threads_each) for c in configs]
    )
    plan = ComparisonPlan(cc, configs, [], tuned_lrs(configs), data_dir, threads_each, jobs)
    return dataclasses.replace(plan, pending=plan.todo(configs))


def _stage2_shapes(plan: ComparisonPlan) -> tuple[list, bool]:
    """Stage 2's runs as `RunShape` s, and whether they
    are known exactly (stage 1 is done) rather than counted (trained methods x later seeds x
    tasks, at the longest steps)."""
    from ..plan.estimate import RunShape, shape_of
    from ..plan.grid import expand
    from ..report import load_results

    cc, configs = plan.cc, plan.configs
    if cc.settings_from or not configs:  # the seed stage is the plan
        return [], True
    if not plan.pending:  # stage 1 is done: stage 2's runs are known
        chosen = seeds_grid(cc, load_results(cc.out, hint=HINT))
        return [shape_of(c) for c in plan.todo(expand(chosen, data_dir=plan.data_dir))], True
    steps = max(c.steps for c in configs)
    groups = sorted({(c.task, c.model) for c in configs})
    return [
        RunShape(steps, METHODS[m].cost, (t, None, seed, model))
        for m in cc.methods
        if METHODS[m].trains
        for seed in cc.seeds[1:]
        for t, model in groups
    ], False


def dry_run_summary(plan: ComparisonPlan, *, step_time: float | None = None, log=print) -> dict:
    """Print the plan -- runs per stage, steps, a time estimate
    (`lorabar.harness.plan.estimate`) -- and run nothing."""
    from ..plan.estimate import Costs, duration, measure_costs, shape_of, wall_estimate
    from ..plan.protocol import describe
    from ..report import result_files

    cc, configs, pending = plan.cc, plan.configs, plan.pending
    later, exact = _stage2_shapes(plan)
    if step_time is not None or not configs:
        costs = Costs(step_time or 0.0, 0.0, 0.0, "given")
    else:
        probe = dataclasses.replace(configs[0], threads=configs[0].threads or plan.threads_each)
        costs = measure_costs(result_files(cc.out), probe, lambda m: METHODS[m].cost, log)
    estimate = wall_estimate([shape_of(c) for c in pending], costs, plan.jobs) + wall_estimate(
        later, costs, plan.jobs
    )
    about = (
        f"{len(later)} to do"
        if exact
        else (f"about {len(later)} runs (their settings are chosen after stage 1)")
    )
    log(f"compare (dry run): {describe(cc.protocol, cc.baseline, plan.lrs)}")
    first = (
        f"seeds {list(cc.seeds)} at the settings chosen in {cc.settings_from}"
        if cc.settings_from
        else f"stage 1 (tuning, seed {cc.seeds[0]})"
    )
    second = "" if cc.settings_from else f"stage 2 (seeds {list(cc.seeds)}): {about}; "
    steps = sorted({c.steps for c in configs})
    log(
        f"compare (dry run): {first}: {len(configs)} runs, {len(pending)} to do; {second}"
        f"{steps[0] if len(steps) == 1 else steps} steps per run; estimate "
        f"{duration(estimate)} on {plan.jobs} job{'s' if plan.jobs > 1 else ''} at "
        f"{1e3 * costs.step_s:.0f} ms/step + {costs.warm_s:.1f} s per run, "
        f"{costs.cold_s:.1f} s for the first of a worker or of a task and seed (loading, "
        f"tokenizing, probe head, evaluation) ({costs.source}; SAM-like methods count "
        f"{max(m.cost for m in METHODS.values()):g}x)"
    )
    return {"planned": len(pending) + len(later), "ran": 0, "paired": None, "estimate_s": estimate}


def execute(plan: ComparisonPlan, *, executor=None, threads: int = 0, log=print) -> int:
    """Run the stages (tuning, then the dev-chosen settings on every seed) through
    [`run_grid()`][lorabar.harness.execute.grid_runner.run_grid] on ``executor`` (an
    [`ExecutorConfig`][lorabar.harness.execute.choice.ExecutorConfig]; default: this machine,
    one run at a time), a progress bar per stage fed by its typed events; returns how many runs
    ran now.  A failed run stops the comparison after its stage (``RuntimeError``, worded as
    `grid`'s: `failed_runs()`): fix it and rerun to resume."""
    from ... import _io
    from ..execute.grid_runner import failed_runs, run_grid
    from ..plan.grid import expand
    from ..plan.protocol import describe, write_record
    from ..report import load_results

    cc, out, ran = plan.cc, Path(plan.cc.out), 0
    log(f"compare: {describe(cc.protocol, cc.baseline, plan.lrs)}")
    write_record(cc, plan.lrs)
    for stage, make in _stages(cc):
        grid = make(lambda: load_results(out, hint=HINT))
        if not grid.get("variant"):
            continue
        pending = len(plan.todo(expand(grid, data_dir=plan.data_dir)))
        bar = _io.progress_bar(
            pending, f"compare, {stage}", unit="run", leave=True, enabled=pending > 0
        )

        def on_event(event, bar=bar) -> None:
            if event.kind in ("done", "failed"):
                bar.update(1)
            if event.kind in ("failed", "moved", "stopping", "warning"):
                log(event.message)

        try:
            counts = run_grid(
                grid,
                out,
                data_dir=plan.data_dir,
                threads=threads,
                executor=executor,
                reuse=cc.reuse,
                log=lambda _line: None,
                events=on_event,
            )
        finally:
            bar.close()
        ran += counts["done"]
        if counts["failed"]:
            raise RuntimeError(failed_runs("compare", counts["failed"], out, stage))
    return ran


def _stages(cc: CompareConfig) -> list:
    """``[(stage name, make(load) -> its grid)]`` of the comparison's protocol."""
    from ..plan.protocol import stages
    from ..report import select
    from ..report.widen import widen_round

    if cc.settings_from:
        return [("seeds", lambda load: source_grid(cc))]
    widen = (
        widen_round(tuning_grid(cc)["base"], cc.seeds[0], planned_tasks(cc), cc.methods)
        if cc.widen_edges
        else None
    )
    return stages(cc, tuning_grid, seeds_grid, select, widen)


def report_comparison(plan: ComparisonPlan, *, ran: int = 0, log=print) -> dict:
    """The report folder, ``OUT/paired.csv``, and the paired differences printed."""
    from ...guard import Output, write_text
    from ..plan.manifest import record_revisions
    from ..plan.protocol import describe, read_record
    from ..report import load_results, paired, render
    from ..keep import keep_adapters
    from ..report.summary import summary_lines

    cc, out = plan.cc, Path(plan.cc.out)
    report = Path(cc.report) if cc.report else out / "report"
    records = load_results(out, hint=HINT)
    record_revisions(out, records)
    kept = (
        keep_adapters(records, cc.save_adapters, every_seed=cc.every_seed, kind=cc.kind, log=log)
        if cc.save_adapters
        else None
    )
    render(
        out,
        out=report,
        baseline=cc.baseline,
        warn=lambda m: log(f"compare: {m}"),
        out_flag="--report" if cc.report else "--out",
        hint=HINT,
        margin=cc.margin,
        notes=kept,
    )
    rows = paired(records, cc.baseline, cc.margin)
    write_text(
        Output("--out", out / "paired.csv", "paired"), (report / "paired.csv").read_bytes().decode()
    )  # byte for byte (CRLF rows)
    record = read_record(out)
    protocol = (
        describe(record["protocol"], record["baseline"], record.get("lrs")) if record else None
    )
    for line in summary_lines(records, rows, cc.baseline, protocol):
        log(line)
    log(
        f"compare: {ran} runs ran now; report in {report}, paired differences in "
        f"{out / 'paired.csv'}"
    )
    return {"planned": ran, "ran": ran, "paired": rows}


def compare(
    cc: CompareConfig,
    *,
    dry_run: bool = False,
    jobs: int = 1,
    threads: int = 0,
    data_dir: str | None = None,
    step_time: float | None = None,
    executor=None,
    manifest: dict | None = None,
    log=print,
) -> dict:
    """Plan, then run and report the comparison (with ``dry_run`` only print the plan); returns
    ``{"planned", "ran", "paired"}``.

    ``step_time``: seconds per LoRA step to estimate with (a dry run on another machine, e.g.
    from ``lorabar bench`` or a paper's table), instead of measuring here.  ``executor``: where
    the runs run (an [`ExecutorConfig`][lorabar.harness.execute.choice.ExecutorConfig]; default:
    ``jobs``
    processes on this machine).  ``manifest``: ``record_command``'s arguments (command line, grid,
    report folder), recorded in ``OUT/manifest.json`` once the plan stands."""
    from ..execute.choice import ExecutorConfig
    from ..plan.manifest import record_command

    executor = executor or ExecutorConfig(jobs=jobs)
    plan = plan_comparison(cc, jobs=executor.jobs, threads=threads, data_dir=data_dir)
    if dry_run:
        return dry_run_summary(plan, step_time=step_time, log=log)
    if manifest is not None:
        record_command(cc.out, **manifest)
    ran = execute(plan, executor=executor, threads=threads, log=log)
    return report_comparison(plan, ran=ran, log=log)
