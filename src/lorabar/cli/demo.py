"""``lorabar demo``: LoRA vs SAM vs oBAR vs nBAR on MiniLM + SST-2 (or a synthetic problem)."""

from __future__ import annotations

import argparse

from .args import field_help


def add_parser(sub) -> None:
    demo = sub.add_parser(
        "demo",
        help="LoRA vs SAM vs oBAR vs nBAR: MiniLM on few-shot SST-2 "
        "when the data folder is found, else (or --synthetic) a tiny synthetic "
        "problem",
    )
    demo.add_argument(
        "--steps", type=int, default=300, help="steps of the synthetic demo (default: %(default)s)"
    )
    demo.add_argument("--seed", type=int, default=0, help="seed (default: %(default)s)")
    demo.add_argument(
        "--lr",
        type=float,
        default=1e-2,
        help="learning rate of the synthetic demo (default: %(default)s)",
    )
    demo.add_argument(
        "--mu0",
        type=float,
        default=2.0,
        help="BAR's rate of the synthetic demo (default: %(default)s)",
    )
    demo.add_argument(
        "--rho",
        type=float,
        default=0.05,
        help="SAM's radius of the synthetic demo (default: %(default)s)",
    )
    demo.add_argument(
        "--data-dir",
        dest="data_dir",
        default=None,
        help="data folder for the real MiniLM comparison (default: $LORABAR_DATA_DIR)",
    )
    # the two defaults are lorabar.apps.demo's REAL_STEPS and REAL_MAX_EVAL (a test checks)
    demo.add_argument(
        "--real-steps",
        dest="real_steps",
        type=int,
        default=20,
        help="steps of the MiniLM demo on the data folder (default: %(default)s)",
    )
    demo.add_argument(
        "--max-eval",
        dest="max_eval",
        type=int,
        default=128,
        help="real comparison: stratified dev/test subset size (0: all; default: %(default)s)",
    )
    demo.add_argument("--device", default="auto", help=field_help("device"))
    demo.add_argument("--precision", default="auto", help=field_help("precision"))
    demo.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads (default: torch's for the MiniLM comparison, 1 for the synthetic demo)",
    )
    demo.add_argument("--synthetic", action="store_true", help="the synthetic demo even with data")
    demo.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os

    from ..apps.demo import DemoConfig, real_comparison, run_demo
    from ..harness.tasks.data_folder import DATA_ENV

    data_dir = args.data_dir or os.environ.get(DATA_ENV)
    if not args.synthetic:
        if data_dir and os.path.isdir(data_dir):
            real_comparison(
                data_dir,
                steps=args.real_steps,
                device=args.device,
                precision=args.precision,
                max_eval=args.max_eval,
                threads=args.threads,
            )
            return 0
        print(
            "lorabar demo: no data directory, so running the synthetic demo instead. For the "
            "real "
            f"comparison on MiniLM + SST-2 pass --data-dir DIR or set {DATA_ENV}=DIR, where DIR "
            "holds sst2/k-shot-1k-test/SST-2/512-13/ (here: ../shared/data).\n"
        )
    run_demo(
        DemoConfig(
            steps=args.steps,
            seed=args.seed,
            mu0=args.mu0,
            rho=args.rho,
            lr=args.lr,
            device=args.device,
            precision=args.precision,
            threads=args.threads or 1,
        )
    )
    return 0
