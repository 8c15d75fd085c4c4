"""``lorabar report``: tables and figures from a folder of result files."""

from __future__ import annotations

import argparse
import sys

from ..harness.run.registry import BASELINE


def add_parser(sub) -> None:
    rep = sub.add_parser("report", help="tables and figures from a folder of result files")
    rep.add_argument("dir", help="a results folder (its *.json and runs/*.json)")
    rep.add_argument("--out", default=None, help="output folder (default: DIR/report)")
    rep.add_argument(
        "--title", default=None, help="report.md's heading (default: 'Report: ' and DIR's name)"
    )
    rep.add_argument("--reference", default=BASELINE, help="method runtimes are normalized to")
    rep.add_argument(
        "--baseline",
        default=BASELINE,
        help="paired differences (paired.csv) are taken against this method",
    )
    rep.add_argument(
        "--margin",
        type=float,
        default=None,
        help="equivalence margin of the verdicts in the metric's points (default "
        "0.5: an interval within ±0.5 is 'equivalent')",
    )
    rep.add_argument(
        "--skip-bad",
        dest="skip_bad",
        action="store_true",
        help="leave out result files that do not parse or lack required keys "
        "(listed on stderr and in report.md) instead of stopping",
    )
    rep.add_argument(
        "--recursive",
        action="store_true",
        help="read result files in every subfolder of DIR too (default: DIR/*.json "
        "and DIR/runs/*.json only)",
    )
    rep.add_argument(
        "--allow-mixed",
        dest="allow_mixed",
        action="store_true",
        help="report runs of different models, steps, precisions ... side by side "
        "(each its own row, with model, steps and precision columns; never "
        "paired across them) instead of refusing",
    )
    rep.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..harness.report import render
    from ..guard import Output, check_output

    from .._io import existing

    existing(args.dir, "DIR", "folder", "a folder of result files")
    check_output(Output("--out", args.out or Path(args.dir) / "report", "report"))

    def warn(message: str) -> None:
        print(f"lorabar report: {message}", file=sys.stderr)

    for path in render(
        args.dir,
        out=args.out,
        reference_method=args.reference,
        skip_bad=args.skip_bad,
        warn=warn,
        baseline=args.baseline,
        recursive=args.recursive,
        allow_mixed=args.allow_mixed,
        title=args.title,
        **({} if args.margin is None else {"margin": args.margin}),
    ):
        print(path)
    return 0
