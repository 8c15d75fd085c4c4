"""``lorabar upgrade``: files an older lorabar wrote, checked, then stamped and signed."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub) -> None:
    up = sub.add_parser(
        "upgrade",
        help="bring result files, manifests and reports an older "
        "lorabar wrote forward: checked, then stamped with their kind and signed",
    )
    up.add_argument(
        "paths", nargs="+", metavar="PATH", help="files or folders (searched recursively)"
    )
    up.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a file would be brought forward or is altered",
    )
    up.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..harness.report.upgrade import apply_upgrade, plan_upgrade

    steps = plan_upgrade(args.paths)  # the whole plan, checked, before anything is written
    for step in steps:
        print(f"{step.path}: {step.why}", file=sys.stdout if step.kind else sys.stderr)
    todo = sum(s.kind is not None for s in steps)
    refused = len(steps) - todo
    done = 0 if args.check else apply_upgrade(steps)
    verb = "to bring forward" if args.check else "brought forward"
    print(
        f"lorabar upgrade: {todo if args.check else done} {verb}, {refused} left alone "
        "(see above); every other file already says what it is or is not lorabar's"
    )
    return 1 if refused or (args.check and todo) else 0
