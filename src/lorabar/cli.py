"""The ``lorabar`` command line."""

from __future__ import annotations

import argparse
import sys


def _demo(args: argparse.Namespace) -> int:
    from .demo import DemoConfig, main

    main(DemoConfig(steps=args.steps, seed=args.seed, mu0=args.mu0, rho=args.rho, lr=args.lr))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lorabar", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="LoRA vs nBAR vs oBAR vs SAM on a tiny synthetic problem")
    demo.add_argument("--steps", type=int, default=300)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--lr", type=float, default=1e-2)
    demo.add_argument("--mu0", type=float, default=2.0)
    demo.add_argument("--rho", type=float, default=0.05)
    demo.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"lorabar: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
