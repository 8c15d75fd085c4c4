"""``lorabar grid``: a TOML grid of finetuning runs (resumable)."""

from __future__ import annotations

import argparse
import sys

from .args import DATA_HELP, add_executor_flags, add_symlink_flag, executor_config, positive


def add_parser(sub) -> None:
    grid = sub.add_parser("grid", help="run a TOML grid of finetuning runs (resumable)")
    grid.add_argument("config", help="the grid TOML ([base], [grid], [[variant]]; see grids/)")
    grid.add_argument("--out", required=True, help="folder: runs/ (resumable), manifest.json")
    grid.add_argument(
        "--reuse",
        action="append",
        default=[],
        metavar="DIR",
        help="a results folder whose finished runs of the same identity count as "
        "done here: referenced in OUT/manifest.json, not copied (repeatable)",
    )
    grid.add_argument(
        "--jobs", type=positive, default=1, help="parallel runs (threads split evenly)"
    )
    add_symlink_flag(grid)
    grid.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="run only the matching configurations (repeatable), e.g. method=zeroshot",
    )
    grid.add_argument(
        "--threads", type=int, default=0, help="torch threads per run (default: CPU count / jobs)"
    )
    grid.add_argument("--data-dir", dest="data_dir", default=None, help=DATA_HELP)
    add_executor_flags(grid)
    grid.set_defaults(func=run, on_interrupt=interrupted)


def run(args: argparse.Namespace) -> int:
    import signal

    from ..harness.execute.grid_runner import run_grid
    from pathlib import Path

    from ..harness.execute.grid_runner import failed_runs
    from ..harness.plan.grid import load_grid, plan_configs, read_result
    from ..harness.plan.manifest import RESULTS_MANIFEST, record_revisions
    from ..harness.plan.inputs import plan_inputs
    from ..guard import Input, Output, check_plan

    only = {}
    for item in args.only:
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not key:
            raise ValueError(f"Invalid --only: {item!r} (expected KEY=VALUE, e.g. method=lora)")
        only[key] = value
    executor = executor_config(args)
    grid = load_grid(args.config)
    configs = plan_configs(grid, data_dir=args.data_dir, only=only)  # every run, validated
    out = [
        Output("--out", args.out, "folder"),
        Output("--out", Path(args.out) / "runs", "folder"),
        Output("--out", Path(args.out) / RESULTS_MANIFEST, "manifest"),
    ]
    check_plan(
        [Input("CONFIG", args.config), *(Input("--reuse", d) for d in args.reuse)],
        out,
        allow_symlink=args.allow_symlink,
    )
    check_plan(plan_inputs(configs), out, allow_symlink=args.allow_symlink)

    def terminate(signum, frame):  # SIGTERM: stop like Ctrl-C (workers are killed with us)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        result = run_grid(
            grid,
            args.out,
            data_dir=args.data_dir,
            threads=args.threads,
            only=only,
            executor=executor,
            reuse=tuple(args.reuse),
            manifest={"command": args.command_line, "grid": args.config},
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
    record_revisions(
        args.out,
        [r for r in map(read_result, (Path(args.out) / "runs").glob("*.json")) if r is not None],
    )
    print(f"grid: {result}")
    if "stopped" in result:
        print(f"lorabar grid: stopped early: {result['stopped']}", file=sys.stderr)
    if result["failed"]:  # the convention compare shares: one line, exit 1
        raise RuntimeError(failed_runs("grid", result["failed"], args.out))
    return 0


def interrupted(args: argparse.Namespace) -> str:
    """What an interrupted grid kept (`main` prints it, exit 130)."""
    from pathlib import Path

    from ..harness.plan.grid import is_done

    done = sum(is_done(p) for p in (Path(args.out) / "runs").glob("*.json"))
    return f"{done} finished runs kept in {args.out}; rerun the same command to resume"
