"""``lorabar compare``: does a method help? Tune on dev, run the chosen settings on every seed,
report paired intervals."""

from __future__ import annotations

import argparse

from ..harness.run.registry import BASELINE, PAPER_METHODS
from .args import (
    DATA_HELP,
    add_config_args,
    add_executor_flags,
    add_symlink_flag,
    comma_list,
    executor_config,
    positive,
)


def add_parser(sub) -> None:
    cmp_ = sub.add_parser(
        "compare",
        help="does a method help? tune on dev (one seed), run the "
        "dev-chosen settings on every seed, report paired 95%% intervals "
        "against a baseline (resumable)",
    )
    _what_to_compare(cmp_)
    _how_to_choose(cmp_)
    _what_to_write(cmp_)
    _how_to_run(cmp_)
    add_config_args(cmp_, "encoder", skip=("method", "seed", "threads"))
    cmp_.set_defaults(func=run, on_interrupt=interrupted)


def _what_to_compare(cmp_: argparse.ArgumentParser) -> None:
    """The methods, tasks, seeds and tuning grid."""
    cmp_.add_argument(
        "--methods",
        default=None,
        help="comma-separated methods (default: those of --grid, else the "
        f"paper's four: {','.join(PAPER_METHODS)})",
    )
    cmp_.add_argument(
        "--tasks", default=None, help="with --grid: only these of its tasks (comma-separated)"
    )
    cmp_.add_argument(
        "--seeds",
        default="13,21,42,87,100",
        help="comma-separated seeds; the first one tunes (default: %(default)s)",
    )
    cmp_.add_argument(
        "--grid",
        default=None,
        metavar="TOML",
        help="the tuning grid (default: each method's grid in the registry; a "
        "setting given as a flag is fixed, not tuned)",
    )
    cmp_.add_argument("--baseline", default=BASELINE, help="paired differences against this method")


def _how_to_choose(cmp_: argparse.ArgumentParser) -> None:
    """The protocol: how settings are chosen, widened, and judged."""
    cmp_.add_argument(
        "--widen-edges",
        dest="widen_edges",
        type=int,
        default=0,
        metavar="N",
        help="after tuning, up to N rounds that try the next value of the grid's "
        "step for every dev choice at the edge of its grid (default 0: none; "
        "the edges are flagged either way)",
    )
    cmp_.add_argument(
        "--margin",
        type=float,
        default=None,
        help="equivalence margin of the verdicts in the metric's points (default "
        "0.5: an interval within ±0.5 is 'equivalent')",
    )
    from ..harness.plan.protocol import PROTOCOLS

    cmp_.add_argument(
        "--protocol",
        default="own-lr",
        choices=list(PROTOCOLS),
        help="; ".join(f"{k}: {v}" for k, v in PROTOCOLS.items()) + " (default: %(default)s)",
    )
    cmp_.add_argument(
        "--settings-from",
        dest="settings_from",
        default=None,
        metavar="DIR",
        help="tune nothing: run every method's dev-chosen setting of DIR's runs on "
        "every seed, with the settings given here on top (e.g. "
        "--label-noise 0.3); the protocol 'settings-from'",
    )


def _what_to_write(cmp_: argparse.ArgumentParser) -> None:
    """The output folders, the reused runs and the kept adapters."""
    cmp_.add_argument("--out", required=True, help="folder: runs/, report/, paired.csv")
    cmp_.add_argument(
        "--reuse",
        action="append",
        default=[],
        metavar="DIR",
        help="a results folder whose finished runs of the same identity count as "
        "done here: referenced in OUT/manifest.json, not copied (repeatable)",
    )
    cmp_.add_argument("--report", default=None, help="report folder (default: OUT/report)")
    cmp_.add_argument(
        "--save-adapters",
        dest="save_adapters",
        default=None,
        metavar="DIR",
        help="keep each method's adapter at its dev-chosen setting (the tuning "
        "seed's run, run again with --save-adapter) in DIR/<task>_<method>_"
        "<setting>_s<seed>; the report lists the command of each",
    )
    cmp_.add_argument(
        "--every-seed",
        dest="every_seed",
        action="store_true",
        help="with --save-adapters: keep the chosen setting's adapter of every seed",
    )


def _how_to_run(cmp_: argparse.ArgumentParser) -> None:
    """A dry run, parallel runs, threads, the data folder and the executor."""
    cmp_.add_argument(
        "--dry-run",
        dest="dry_run",
        action="store_true",
        help="print the plan and a time estimate; run nothing",
    )
    cmp_.add_argument(
        "--step-time",
        dest="step_time",
        type=float,
        default=None,
        metavar="S",
        help="with --dry-run: estimate with S seconds per LoRA step (e.g. measured "
        "on the GPU that will run it) instead of measuring here",
    )
    cmp_.add_argument("--jobs", type=positive, default=1, help="parallel runs")
    add_symlink_flag(cmp_)
    cmp_.add_argument(
        "--threads", type=int, default=0, help="torch threads per run (default: CPU count / jobs)"
    )
    cmp_.add_argument("--data-dir", dest="data_dir", default=None, help=DATA_HELP)
    add_executor_flags(cmp_)


def run(args: argparse.Namespace) -> int:
    from ..harness.compare import compare

    cc, executor = compare_configs(args)
    report = _check(args, cc)
    compare(
        cc,
        dry_run=args.dry_run,
        executor=executor,
        threads=args.threads,
        data_dir=args.data_dir,
        step_time=args.step_time,
        manifest={"command": args.command_line, "grid": args.grid, "report": str(report.path)},
    )
    return 0


def compare_configs(args: argparse.Namespace) -> tuple:
    """The comparison and the executor the flags ask for
    (`lorabar.harness.compare.CompareConfig`, `lorabar.harness.execute.choice.ExecutorConfig`);
    checked in one order: the methods and tasks, the executor's flags, then the comparison's."""
    from ..harness.compare import CompareConfig, grid_methods

    if args.methods is not None:
        methods = comma_list(args.methods, "--methods")
    elif args.grid:
        methods = grid_methods(args.grid)
    else:
        methods = PAPER_METHODS
    tasks = comma_list(args.tasks, "--tasks") if args.tasks else None
    executor = executor_config(args)
    cc = CompareConfig(
        out=args.out,
        methods=methods,
        seeds=comma_list(args.seeds, "--seeds", int),
        base=main_settings(args),
        grid=args.grid,
        baseline=args.baseline,
        report=args.report,
        tasks=tasks,
        protocol="settings-from" if args.settings_from else args.protocol,
        settings_from=args.settings_from,
        reuse=tuple(args.reuse),
        widen_edges=args.widen_edges,
        save_adapters=args.save_adapters,
        every_seed=args.every_seed,
        **({} if args.margin is None else {"margin": args.margin}),
    )
    return cc, executor


def _check(args: argparse.Namespace, cc):
    """Check every input and output of stage 1 before anything runs; the report's output."""
    from pathlib import Path

    from ..guard import Input, Output, check_plan
    from ..harness.compare import tuning_grid
    from ..harness.plan.grid import expand
    from ..harness.plan.inputs import plan_inputs
    from ..harness.plan.manifest import RESULTS_MANIFEST
    from ..harness.plan.protocol import RECORD

    configs = expand(tuning_grid(cc), data_dir=args.data_dir)  # every stage-1 run, validated
    inputs = plan_inputs(configs)
    if args.grid:
        inputs.append(Input("--grid", args.grid))
    if args.settings_from:
        inputs.append(Input("--settings-from", args.settings_from))
    inputs += [Input("--reuse", folder) for folder in args.reuse]
    report = (
        Output("--report", args.report, "report")
        if args.report
        else Output("--out", Path(args.out) / "report", "report")
    )
    check_plan(
        inputs,
        [
            Output("--out", args.out, "folder"),
            report,
            Output("--out", Path(args.out) / "runs", "folder"),
            Output("--save-adapters", args.save_adapters, "folder"),
            Output("--out", Path(args.out) / "paired.csv", "paired"),
            Output("--out", Path(args.out) / RESULTS_MANIFEST, "manifest"),
            Output("--out", Path(args.out) / RECORD, "compare"),
        ],
        allow_symlink=args.allow_symlink,
    )
    return report


def interrupted(args: argparse.Namespace) -> str:
    """What an interrupted comparison kept (`main` prints it, exit 130)."""
    return f"finished runs are kept in {args.out}; rerun the same command to resume"


def main_settings(args: argparse.Namespace, kind: str = "encoder") -> dict:
    """The config settings given on the command line (``None``: not given)."""
    from ..harness.run.config import CONFIGS

    names = set(CONFIGS[kind].field_names()) - {"method", "seed"}
    return {k: v for k, v in vars(args).items() if k in names and v is not None}
