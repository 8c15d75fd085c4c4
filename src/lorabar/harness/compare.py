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

import dataclasses
from pathlib import Path

from .report.verdicts import DEFAULT_MARGIN
from .run.config import CONFIGS
from .run.registry import BASELINE, METHODS, PAPER_METHODS
from .run.result import RunRecord

__all__ = [
    "CompareConfig",
    "ComparisonPlan",
    "compare",
    "dry_run_summary",
    "execute",
    "plan_comparison",
    "report_comparison",
    "seeds_grid",
    "source_grid",
    "tuning_grid",
]


@dataclasses.dataclass(frozen=True)
class CompareConfig:
    """What to compare: ``base`` (config settings every run shares: the task or your own files,
    steps, model ...), ``methods``, ``seeds`` (the first one tunes), an optional TOML ``grid`` for
    stage 1, the ``baseline`` of the paired differences and the output folder ``out``;
    ``reuse``: folders whose finished runs of the same identity count as this comparison's
    (referenced in ``OUT/manifest.json``, not copied); ``margin``: the verdicts' equivalence
    margin in the metric's points (`verdicts`); ``widen_edges``:
    rounds of `widen` after tuning (0: none)."""

    out: str
    methods: tuple[str, ...] = PAPER_METHODS
    seeds: tuple[int, ...] = (13, 21, 42, 87, 100)
    base: dict = dataclasses.field(default_factory=dict)
    grid: str | None = None
    baseline: str = BASELINE
    kind: str = "encoder"
    report: str | None = None
    tasks: tuple[str, ...] | None = None
    protocol: str = "own-lr"
    settings_from: str | None = None
    reuse: tuple[str, ...] = ()
    margin: float = DEFAULT_MARGIN
    widen_edges: int = 0
    save_adapters: str | None = None  # `keep`: each method's adapter at its chosen setting
    every_seed: bool = False

    def __post_init__(self) -> None:
        from .. import _validate as _v
        from .plan.protocol import PROTOCOLS
        from .report.paired import check_pairing
        from .report.widen import check_widen

        check_pairing(self.baseline, self.margin)
        check_widen(self.widen_edges, self.protocol)

        if self.protocol not in PROTOCOLS:
            raise _v.choice("protocol", self.protocol, list(PROTOCOLS), "--protocol")
        if self.kind not in CONFIGS:
            raise _v.choice("kind", self.kind, sorted(CONFIGS))
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise _v.choice("methods", ",".join(unknown) or "''", list(METHODS), "--methods")
        if self.baseline not in self.methods:
            raise ValueError(
                f"Invalid --baseline: {self.baseline!r} is not among --methods {list(self.methods)}"
            )
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"Invalid --seeds: {list(self.seeds)} (expected distinct seeds)")
        for s in self.seeds:
            _v.integer("seeds", s, 0, flag="--seeds")
        if (self.settings_from is None) != (self.protocol != "settings-from"):
            raise ValueError(
                "Invalid --settings-from: the protocol 'settings-from' and "
                "--settings-from DIR go together"
            )
        if self.settings_from is not None and not Path(self.settings_from).is_dir():
            raise ValueError(
                f"Invalid --settings-from: {self.settings_from!r} is not a folder of finished runs"
            )
        for folder in self.reuse:
            if not (Path(folder) / "runs").is_dir():
                raise ValueError(f"Invalid --reuse: {folder!r} is not a results folder (no runs/)")
        if self.every_seed and not self.save_adapters:
            raise ValueError(
                "Invalid --every-seed: it keeps an adapter per seed with "
                "--save-adapters DIR; give that too"
            )
        if self.tasks and not self.grid:
            raise ValueError(
                "Invalid --tasks: it picks tasks of a --grid TOML; without --grid "
                "give the one task with --task (or your files with --train/--dev/"
                "--test)"
            )


def grid_methods(path: str) -> tuple[str, ...]:
    """The methods a tuning TOML's variants name, in the registry's order."""
    from .plan.grid import load_grid

    grid = load_grid(path)
    named: set[str] = set()
    for v in grid.get("variant", [{}]):
        m = v.get("method", grid.get("base", {}).get("method", "lora"))
        named.update(m if isinstance(m, list) else [m])
    return tuple(m for m in METHODS if m in named)


def _check_seeds(grid: dict, cc: CompareConfig) -> None:
    """The seeds of a comparison come from ``--seeds`` alone: a TOML may repeat the tuning seed
    in [base] or [grid] (as a ``lorabar grid`` file does), nothing else."""
    for i, v in enumerate(grid.get("variant", [])):
        if "seed" in v:
            raise ValueError(
                f"Invalid grid {cc.grid!r}: variant[{i}].seed = {v['seed']!r}; the "
                "seeds of a comparison come from --seeds alone (remove the key)"
            )
    for where in ("base", "grid"):
        value = grid.get(where, {}).get("seed")
        if value is not None and (value if isinstance(value, list) else [value]) != [cc.seeds[0]]:
            raise ValueError(
                f"Invalid grid {cc.grid!r}: {where}.seed = {value!r}, but the "
                f"tuning seed is the first of --seeds ({cc.seeds[0]}); the seeds of "
                "a comparison come from --seeds alone (remove the key)"
            )


def tuning_grid(cc: CompareConfig) -> dict:
    """Stage 1 as a grid dict: the TOML's (its seeds replaced by the tuning seed, restricted to
    ``methods``), else the registry's default grid per method (with the baseline's lr values
    under the ``own-lr`` protocol), with ``base`` on top."""
    from .plan.grid import load_grid

    if cc.grid:
        grid = load_grid(cc.grid)
        _check_seeds(grid, cc)
        base = {**grid.get("base", {}), **cc.base}
        table = {**grid.get("grid", {}), "seed": [cc.seeds[0]]}
        if cc.tasks:  # a subset of the TOML's tasks (cheap ones first, say)
            listed = table.get("task", base.get("task"))
            listed = listed if isinstance(listed, list) else [listed]
            unknown = [t for t in cc.tasks if t not in listed]
            if unknown:
                raise ValueError(
                    f"Invalid --tasks: {unknown} are not tasks of {cc.grid} ({listed})"
                )
            table["task"] = [t for t in listed if t in cc.tasks]
        variants = []
        for v in grid.get("variant", [{}]):
            methods = v.get("method", base.get("method"))
            names = methods if isinstance(methods, list) else [methods]
            keep = [m for m in names if m in cc.methods]
            if keep:
                variants.append({**v, "method": keep if isinstance(methods, list) else keep[0]})
        return {"base": base, "grid": table, "variant": variants}
    from .plan.protocol import baseline_lrs, registry_variants

    lr = baseline_lrs(cc) if cc.protocol == "own-lr" else None
    return {
        "base": dict(cc.base),
        "grid": {"seed": [cc.seeds[0]]},
        "variant": registry_variants(cc, cc.methods, lr=lr),
    }


def seeds_grid(cc: CompareConfig, results: list[RunRecord]) -> dict:
    """Stage 2 as a grid dict: per (task, method) the dev-chosen setting on every seed."""
    from .report import select

    variants = []
    mine = planned_tasks(cc)
    for (task, unit), runs in sorted(select(results).items()):
        method = unit.method
        if method not in cc.methods or task not in mine:
            continue  # another comparison's runs in the same folder (other data, other tasks)
        c = {**runs[0]["config"], "task": runs[0].recorded_task}
        entry = METHODS[method]
        # what selection may vary per method: lr, its own settings, and weight decay (a recipe
        # may set it per method, as the paper's App. D.4 does for BAR)
        keys = ["lr", *entry.reads(c), "weight_decay"] if entry.trains else []
        variants.append(
            {
                "task": c["task"],
                "method": method,
                "seed": list(cc.seeds) if entry.trains else [cc.seeds[0]],
                **{k: c[k] for k in keys if k in c},
            }
        )
    base = tuning_grid(cc)["base"]
    return {"base": base, "variant": variants}


def source_grid(cc: CompareConfig) -> dict:
    """``--settings-from DIR``: the seed stage's grid of DIR's dev-chosen settings, with this
    comparison's settings on top (``--label-noise 0.3``, say)."""
    from .report import load_results

    grid = seeds_grid(cc, load_results(cc.settings_from, hint=HINT))
    if not grid["variant"]:  # before anything is written: the seed stage would run nothing
        raise ValueError(
            f"Invalid --settings-from: {cc.settings_from!r} holds no dev-chosen "
            f"setting for this comparison's tasks {sorted(planned_tasks(cc))} and "
            f"methods {list(cc.methods)}; give the folder of a comparison of them"
        )
    return grid


def _check_with_finished(out: Path, configs: list) -> None:
    """Refuse, before anything runs, a plan whose runs cannot be compared with the finished
    runs already in ``out`` (another model, other steps ...): one line naming both."""
    from .plan.grid import identity_of
    from .run.identity import own_task_name
    from .report import check_comparable, load, result_files

    if not result_files(out):
        return
    finished = load(out, skip_bad=True)[0]
    planned = []
    for c in configs:
        ident = identity_of(c)
        task = own_task_name(dataclasses.asdict(c), ident["data"]) if c.task == "custom" else c.task
        planned.append(
            RunRecord.of(
                {"identity": ident, "config": {"task": task, "method": c.method}},
                f"the planned run {task}/{c.method}/seed {c.seed}",
            )
        )
    check_comparable(finished + planned, hint=HINT)


def planned_tasks(cc: CompareConfig) -> set[str]:
    """The task names (as reports name them) this comparison's stage 1 runs."""
    from .plan.grid import expand
    from .run.identity import own_task_name, role_identity

    names = set()
    for c in expand(tuning_grid(cc)):
        names.add(
            own_task_name(dataclasses.asdict(c), role_identity(c)) if c.task == "custom" else c.task
        )
    return names


# what to do when --out holds runs this comparison cannot be compared with
HINT = "give each comparison its own --out"


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
        from .plan.grid import done_here, finished_in, identity_of
        from .plan.manifest import reused_files

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
    from .models.available import check_model_available
    from .plan.grid import expand
    from .execute.choice import threads_per_run
    from .plan.protocol import check_record, tuned_lrs

    check_record(cc)
    configs = expand(source_grid(cc) if cc.settings_from else tuning_grid(cc), data_dir=data_dir)
    for model in sorted({c.model for c in configs}):
        check_model_available(model)
    threads_each = threads_per_run(threads, jobs)  # as run_grid resolves it
    _check_with_finished(
        Path(cc.out), [dataclasses.replace(c, threads=c.threads or threads_each) for c in configs]
    )
    plan = ComparisonPlan(cc, configs, [], tuned_lrs(configs), data_dir, threads_each, jobs)
    return dataclasses.replace(plan, pending=plan.todo(configs))


def _stage2_shapes(plan: ComparisonPlan) -> tuple[list, bool]:
    """Stage 2's runs as `RunShape` s, and whether they
    are known exactly (stage 1 is done) rather than counted (trained methods x later seeds x
    tasks, at the longest steps)."""
    from .plan.estimate import RunShape, shape_of
    from .plan.grid import expand
    from .report import load_results

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
    from .plan.estimate import Costs, duration, measure_costs, shape_of, wall_estimate
    from .plan.protocol import describe
    from .report import result_files

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
    from .. import _io
    from .execute.grid_runner import failed_runs
    from .execute.grid_runner import run_grid
    from .plan.grid import expand
    from .plan.protocol import describe, stages, write_record
    from .report import load_results, select
    from .report.widen import widen_round

    cc, out, ran = plan.cc, Path(plan.cc.out), 0
    log(f"compare: {describe(cc.protocol, cc.baseline, plan.lrs)}")
    write_record(cc, plan.lrs)
    plan_stages = (
        [("seeds", lambda load: source_grid(cc))]
        if cc.settings_from
        else stages(
            cc,
            tuning_grid,
            seeds_grid,
            select,
            widen_round(tuning_grid(cc)["base"], cc.seeds[0], planned_tasks(cc), cc.methods)
            if cc.widen_edges
            else None,
        )
    )
    for stage, make in plan_stages:
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


def report_comparison(plan: ComparisonPlan, *, ran: int = 0, log=print) -> dict:
    """The report folder, ``OUT/paired.csv``, and the paired differences printed."""
    from ..guard import Output, write_text
    from .plan.manifest import record_revisions
    from .plan.protocol import describe, read_record
    from .report import load_results, paired, render
    from .keep import keep_adapters
    from .report.summary import summary_lines

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
    from .execute.choice import ExecutorConfig
    from .plan.manifest import record_command

    executor = executor or ExecutorConfig(jobs=jobs)
    plan = plan_comparison(cc, jobs=executor.jobs, threads=threads, data_dir=data_dir)
    if dry_run:
        return dry_run_summary(plan, step_time=step_time, log=log)
    if manifest is not None:
        record_command(cc.out, **manifest)
    ran = execute(plan, executor=executor, threads=threads, log=log)
    return report_comparison(plan, ran=ran, log=log)
