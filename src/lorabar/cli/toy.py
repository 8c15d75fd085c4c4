"""``lorabar toy``: the paper's toy problems (Figs. 1, 2, 4)."""

from __future__ import annotations

import argparse
import sys

from .args import add_symlink_flag, comma_list


def add_parser(sub) -> None:
    toy = sub.add_parser("toy", help="the paper's toy problems: Figs. 1, 2, 4 and summary.json")
    toy.add_argument(
        "figure",
        choices=("fig1", "fig2", "fig4", "all"),
        help="the paper's figure to reproduce on the toy problems (all: each)",
    )
    toy.add_argument("--out", required=True, help="output folder")
    toy.add_argument(
        "--seeds", type=int, default=3, help="seeds per setting (default: %(default)s)"
    )
    toy.add_argument("--steps", type=int, default=100_000, help="iterations T (paper: 1e5)")
    toy.add_argument("--eta", type=float, default=1e-4, help="step size (paper: 1e-4)")
    toy.add_argument(
        "--noise",
        default="0.1,0.5,1.0,2.0",
        help="noise levels alpha, comma-separated (the paper does not print its own)",
    )
    toy.add_argument("--m", type=int, default=4, help="m for SAM with m-sharpness")
    toy.add_argument("--fig2b-noise", type=float, default=1.0, help="noise level of Fig. 2(b)")
    toy.add_argument("--quiet", action="store_true", help="no progress bar")
    add_symlink_flag(toy)
    toy.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .._io import progress_bar
    from ..guard import Output, check_plan
    from ..publish import merge_folder, staging
    from ..toy.figures import make_figures as run_figures
    from ..toy.simulate import ToyConfig, compiled

    noise = comma_list(args.noise, "--noise", float, low=0)
    out = Output("--out", args.out, "figures")
    check_plan([], [out], allow_symlink=args.allow_symlink)
    cfg = ToyConfig(steps=args.steps, seeds=args.seeds, noise_levels=noise, eta=args.eta, m=args.m)
    if not compiled():
        print(
            "lorabar toy: numba is not installed, the simulator runs as plain Python (slow); "
            "pip install 'lorabar[toy]'",
            file=sys.stderr,
        )
    bar = progress_bar(
        cfg.steps, f"toy {args.figure}", enabled=not args.quiet, unit="step", leave=True
    )

    def progress(stage: str, done: int, total: int) -> None:
        bar.update(done - bar.n)

    with staging(out) as tmp:  # built beside --out, then moved in: a user's files are kept
        written = run_figures(
            args.figure, cfg, tmp, fig2b_noise=args.fig2b_noise, progress=progress
        )
        bar.close()
        paths = merge_folder(tmp, out, allow_symlink=args.allow_symlink)
    for path in paths:
        if path.suffix == ".png":
            print(path)
    if written["seconds"] is not None:
        print(f"simulation: {written['seconds']:.2f} s for {cfg.steps} steps")
    return 0
