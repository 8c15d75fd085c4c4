"""``lorabar grid``: a TOML grid of finetuning runs (resumable)."""

from __future__ import annotations

import argparse
import sys

from .args import DATA_HELP, add_symlink_flag, positive


def add_parser(sub) -> None:
    grid = sub.add_parser("grid", help="run a TOML grid of finetuning runs (resumable)")
    grid.add_argument("config")
    grid.add_argument("--out", required=True)
    grid.add_argument("--jobs", type=positive, default=1,
                      help="parallel runs (threads split evenly)")
    add_symlink_flag(grid)
    grid.add_argument("--only", action="append", default=[], metavar="KEY=VALUE",
                      help="run only the matching configurations (repeatable), e.g. method=zeroshot")
    grid.add_argument("--threads", type=int, default=0,
                      help="torch threads per run (default: CPU count / jobs)")
    grid.add_argument("--data-dir", dest="data_dir", default=None, help=DATA_HELP)
    grid.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import signal

    from ..experiments.grid import is_done, load_grid, plan_configs, run_grid
    from ..experiments.plan import plan_inputs
    from ..guard import Input, Output, check_plan

    only = {}
    for item in args.only:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"Invalid --only: {item!r} (expected KEY=VALUE, e.g. method=lora)")
        only[key] = value
    grid = load_grid(args.config)
    configs = plan_configs(grid, data_dir=args.data_dir, only=only)  # every run, validated
    out = Output("--out", args.out, "folder")
    check_plan([Input("CONFIG", args.config)], [out], allow_symlink=args.allow_symlink)
    check_plan(plan_inputs(configs), [out], allow_symlink=args.allow_symlink)

    def terminate(signum, frame):  # SIGTERM: stop like Ctrl-C (workers are killed with us)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        result = run_grid(grid, args.out, jobs=args.jobs, data_dir=args.data_dir,
                          threads=args.threads, only=only)
    except KeyboardInterrupt:
        from pathlib import Path

        done = sum(is_done(p) for p in (Path(args.out) / "runs").glob("*.json"))
        print(f"lorabar grid: interrupted; {done} finished runs kept in {args.out}; rerun the "
              "same command to resume", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f"grid: {result}")
    if "stopped" in result:
        print(f"lorabar grid: stopped early: {result['stopped']}", file=sys.stderr)
    return 1 if result["failed"] else 0
