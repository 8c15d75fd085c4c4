"""The ``lorabar`` command line: one module per subcommand (``add_parser``, ``run``), the
parser, and the one table from an error to the exit status."""

from __future__ import annotations

import argparse
import sys

from . import bench, compare, demo, finetune, grid, inspect, report, toy, upgrade
from .args import version

SUBCOMMANDS = (demo, toy, finetune, bench, compare, grid, inspect, report, upgrade)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lorabar",
        description="The lorabar command line: LoRA finetuning with BAR and "
        "SAM, and the harness that compares them.",
    )
    parser.add_argument("--version", action="version", version=f"lorabar {version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in SUBCOMMANDS:
        command.add_parser(sub)
    for name, command in sub.choices.items():
        command.add_argument(
            "--verbose",
            action="store_true",
            help="show the libraries' warnings, logging and progress bars "
            "(transformers, PEFT, the hub: off by default)",
        )
    return parser


def command_line(argv: list[str]) -> str:
    """The command as a manifest records it: absolute paths relative to the folder it ran in
    (``--data-dir /home/me/data`` run from ``/home/me/lorabar`` is ``--data-dir ../data``), so
    that a committed manifest names no machine's folders."""
    import os
    import shlex

    def portable(arg: str) -> str:
        flag, eq, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
        if os.path.isabs(value):
            value = os.path.relpath(value, os.getcwd())
        return f"{flag}{eq}{value}"

    return "lorabar " + shlex.join(portable(a) for a in argv)


def refuse_empty(args, argv: list[str]) -> None:
    """An empty value (``--out ""``, ``--methods ""``, an empty DIR) means nothing a command can
    do: it is refused, naming the flag, instead of being taken as "not given" (which trained and
    wrote nothing)."""
    for name, value in vars(args).items():
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, str) and not v.strip() for v in values):
            flag = f"--{name.replace('_', '-')}"
            shown = (
                flag if any(a == flag or a.startswith(flag + "=") for a in argv) else name.upper()
            )
            raise ValueError(f"Invalid {shown}: an empty value (give one, or leave it out)")


def main(argv: list[str] | None = None) -> int:
    import signal

    if argv is None and hasattr(signal, "SIGPIPE"):  # `lorabar inspect A | head`: no traceback
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    parser = build_parser()
    if not (sys.argv[1:] if argv is None else argv):  # `lorabar` alone: what it can do
        parser.print_help()
        return 0
    args = parser.parse_args(argv)
    if argv is None and not args.verbose:  # the console script: process-wide, as a user runs it
        from .args import quiet_libraries

        quiet_libraries()
    if "torch" not in sys.modules:  # before torch starts its OpenMP pool (lorabar._threads)
        from .._threads import choose_wait_policy

        choose_wait_policy()
    args.command_line = command_line(sys.argv[1:] if argv is None else argv)
    try:
        refuse_empty(args, sys.argv[1:] if argv is None else argv)
        return args.func(args)
    except KeyboardInterrupt:  # Ctrl-C (and a grid's SIGTERM): 130, saying what was kept
        kept = getattr(args, "on_interrupt", None)
        print(
            f"lorabar {args.command}: interrupted" + (f"; {kept(args)}" if kept else ""),
            file=sys.stderr,
        )
        return 130
    except Exception as err:  # noqa: BLE001 - one line for every error (EXIT_CODES)
        code = exit_code(err)
        if code is None:
            raise
        print(f"lorabar: error: {err}", file=sys.stderr)
        return code


# What an error means, and so the exit status: bad input (a flag, a file, a TOML key: nothing
# ran or was written) is 2; a failure while running (a NaN loss, a failed run, a full disk) is
# 1.  Checked in order; an error of no listed type is a bug: its traceback is shown.
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (FileNotFoundError, 2),
    (ValueError, 2),  # DataError, OutputError, a bad flag or TOML key
    (FloatingPointError, 1),  # a non-finite loss
    (RuntimeError, 1),  # a failed run of a grid or comparison
    (OSError, 1),  # the disk, a permission
)


def exit_code(err: BaseException) -> int | None:
    """The exit status of ``err`` (`EXIT_CODES`), or ``None`` for a bug."""
    for kind, code in EXIT_CODES:
        if isinstance(err, kind):
            return code
    return None
