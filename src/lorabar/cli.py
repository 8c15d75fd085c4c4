"""The ``lorabar`` command line."""

from __future__ import annotations

import argparse
import sys


def _demo(args: argparse.Namespace) -> int:
    from .demo import DemoConfig, main

    main(DemoConfig(steps=args.steps, seed=args.seed, mu0=args.mu0, rho=args.rho, lr=args.lr))
    return 0


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from err


def _toy(args: argparse.Namespace) -> int:
    from .toy.figures import run
    from .toy.simulate import ToyConfig, compiled

    cfg = ToyConfig(steps=args.steps, seeds=args.seeds, noise_levels=args.noise, eta=args.eta,
                    m=args.m)
    if not compiled():
        print("lorabar toy: numba is not installed, the simulator runs as plain Python (slow); "
              "pip install 'lorabar[toy]'", file=sys.stderr)
    bar = _progress(total=cfg.steps, desc=f"toy {args.figure}", quiet=args.quiet)

    def progress(stage: str, done: int, total: int) -> None:
        bar.update(done - bar.n)

    written = run(args.figure, cfg, args.out, fig2b_noise=args.fig2b_noise, progress=progress)
    bar.close()
    for path in written["figures"]:
        print(path)
    if written["seconds"] is not None:
        print(f"simulation: {written['seconds']:.2f} s for {cfg.steps} steps")
    return 0


def _progress(total: int, desc: str, quiet: bool):
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    if tqdm is None or quiet:

        class _Null:
            n = 0

            def update(self, k: int) -> None:
                self.n += k

            def close(self) -> None:
                pass

        return _Null()
    return tqdm(total=total, desc=desc, unit="step", unit_scale=True)


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

    toy = sub.add_parser("toy", help="the paper's toy problems: Figs. 1, 2, 4 and summary.json")
    toy.add_argument("figure", choices=("fig1", "fig2", "fig4", "all"))
    toy.add_argument("--out", required=True, help="output folder")
    toy.add_argument("--seeds", type=int, default=3)
    toy.add_argument("--steps", type=int, default=100_000, help="iterations T (paper: 1e5)")
    toy.add_argument("--eta", type=float, default=1e-4, help="step size (paper: 1e-4)")
    toy.add_argument("--noise", type=_floats, default=(0.1, 0.5, 1.0, 2.0),
                     help="noise levels alpha, comma-separated (the paper does not print its own)")
    toy.add_argument("--m", type=int, default=4, help="m for SAM with m-sharpness")
    toy.add_argument("--fig2b-noise", type=float, default=1.0, help="noise level of Fig. 2(b)")
    toy.add_argument("--quiet", action="store_true", help="no progress bar")
    toy.set_defaults(func=_toy)
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
