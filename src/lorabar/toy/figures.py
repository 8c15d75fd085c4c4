"""Regenerate the paper's toy figures (Figs. 1, 2 and 4) and ``summary.json`` from simulations.

Every figure is written as a PNG with a JSON beside it holding the downsampled curves (means over
seeds) and the configuration that produced them.  Plotting needs matplotlib (``lorabar[plot]``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from .._io import write_json_atomic
from .fig4 import fig4_loss, fig4_trajectories
from .simulate import TOY_METHODS, PROBLEMS, ToyConfig, ToyResult, simulate

FIGURES = ("fig1", "fig2", "fig4", "all")
_LABEL = {
    "sgd": "SGD",
    "sngd": "SNGD",
    "sam": "SAM",
    "sam_m": "SAM (m-sharpness)",
    "nbar": "nBAR",
    "obar": "oBAR",
    "explicit": "explicit regularizer",
    "sbar": "sBAR (SAM-matched)",
}


def _plt():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover
        raise ImportError("plotting needs matplotlib: pip install 'lorabar[plot]'") from err
    return plt


def _mean_curve(res: ToyResult, field: str, problem: str, method: str, noise: float) -> np.ndarray:
    return getattr(res, field)[res.select(problem, method, noise)].mean(axis=0)


def _curves(res: ToyResult, problem: str, methods, noises) -> dict:
    out = {}
    for m in methods:
        for a in noises:
            out[f"{m}/{a:g}"] = {
                "abs_B": _mean_curve(res, "abs_B", problem, m, a).round(8).tolist(),
                "grad_gap": _mean_curve(res, "gap", problem, m, a).round(8).tolist(),
            }
    return out


def _colors(n: int):
    plt = _plt()
    cmap = plt.get_cmap("viridis")
    return [cmap(0.1 + 0.8 * i / max(1, n - 1)) for i in range(n)]


def plot_fig1(res: ToyResult, out: Path) -> list[Path]:
    """Fig. 1(a)/(b): |B_t| and | |g_x|^2 - |g_y|^2 | for SGD and SAM at every noise level."""
    plt = _plt()
    cfg = res.config
    written = []
    for problem in PROBLEMS:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
        for color, a in zip(_colors(len(cfg.noise_levels)), cfg.noise_levels):
            for m, style in (("sgd", "--"), ("sam", "-")):
                ax1.plot(
                    res.steps,
                    _mean_curve(res, "abs_B", problem, m, a),
                    style,
                    color=color,
                    label=f"{_LABEL[m]}, α={a:g}",
                )
                ax2.plot(
                    res.steps[1:],
                    _mean_curve(res, "gap", problem, m, a)[1:],
                    style,
                    color=color,
                    lw=0.8,
                )
        ax1.set(
            xlabel="iteration",
            ylabel="|B_t| = |‖x‖² − ‖y‖²| / 2",
            title=f"{problem.upper()}: balancedness",
        )
        ax2.set(
            xlabel="iteration",
            ylabel="| ‖g_x‖² − ‖g_y‖² |",
            yscale="log",
            title=f"{problem.upper()}: gradient gap (mean over {cfg.every} steps)",
        )
        ax1.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        path = out / f"fig1_{problem}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        write_json_atomic(
            out / f"fig1_{problem}.json",
            {
                "figure": f"Fig. 1({'a' if problem == 'nop' else 'b'})",
                "problem": problem,
                "config": cfg.to_dict(),
                "steps": res.steps.tolist(),
                "curves": _curves(res, problem, ("sgd", "sam"), cfg.noise_levels),
            },
        )
        written.append(path)
    return written


def plot_fig2(res: ToyResult, out: Path, noise_b: float) -> list[Path]:
    """Fig. 2(a): SAM's |B_t| on NOP and Corollary 1's time-averaged threshold (dotted).
    Fig. 2(b): implicit (SAM) vs explicit (nBAR, oBAR, regularizer, and lorabar's sBAR) at one
    noise level."""
    plt = _plt()
    cfg = res.config
    fig, ax = plt.subplots(figsize=(6, 4))
    thresholds = {}
    for color, a in zip(_colors(len(cfg.noise_levels)), cfg.noise_levels):
        ax.plot(
            res.steps, _mean_curve(res, "abs_B", "nop", "sam", a), color=color, label=f"α={a:g}"
        )
        thr = float(np.mean(res.threshold[res.select("nop", "sam", a)]))
        thresholds[f"{a:g}"] = thr
        ax.axhline(thr, ls=":", color=color)
    ax.set(xlabel="iteration", ylabel="|B_t|", title="NOP, SAM: |B_t| and time-averaged B̄ (dotted)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "fig2a.png", dpi=110)
    plt.close(fig)
    write_json_atomic(
        out / "fig2a.json",
        {
            "figure": "Fig. 2(a)",
            "problem": "nop",
            "config": cfg.to_dict(),
            "steps": res.steps.tolist(),
            "threshold_time_average": thresholds,
            "curves": _curves(res, "nop", ("sam",), cfg.noise_levels),
        },
    )

    methods = [m for m in ("sgd", "sam", "nbar", "obar", "explicit", "sbar") if m in res.method]
    fig, ax = plt.subplots(figsize=(6, 4))
    for m in methods:
        ax.plot(res.steps, _mean_curve(res, "abs_B", "nop", m, noise_b), label=_LABEL[m])
    ax.set(
        xlabel="iteration",
        ylabel="|B_t|",
        title=f"NOP, α={noise_b:g}: implicit (SAM) vs explicit regularization",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "fig2b.png", dpi=110)
    plt.close(fig)
    write_json_atomic(
        out / "fig2b.json",
        {
            "figure": "Fig. 2(b)",
            "problem": "nop",
            "noise": noise_b,
            "config": cfg.to_dict(),
            "steps": res.steps.tolist(),
            "curves": _curves(res, "nop", methods, (noise_b,)),
        },
    )
    return [out / "fig2a.png", out / "fig2b.png"]


def plot_fig4(out: Path) -> list[Path]:
    plt = _plt()
    settings = {"start": (0.25, -0.24), "eta": 2e-5, "steps": 4000}
    paths = fig4_trajectories(**settings, mu0=20.0)
    strong = fig4_trajectories(**settings, mu0=100.0)["obar"]
    grid = np.linspace(-0.3, 0.3, 301)
    gx, gy = np.meshgrid(grid, grid)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.contour(gx, gy, np.log10(1e-3 + fig4_loss(gx, gy)), levels=25, cmap="Greys", linewidths=0.6)
    ax.plot(grid, -grid, ":", color="k", lw=1, label="|x| = |y| (x = −y)")
    for name, path, color in (
        ("GD", paths["gd"], "C0"),
        ("GD + hard constraint |x| = |y|", paths["hard_constraint"], "C3"),
        ("GD + oBAR (μ0 = 20)", paths["obar"], "C2"),
        ("GD + oBAR (μ0 = 100, too strong)", strong, "C1"),
    ):
        ax.plot(path[:, 0], path[:, 1], color=color, lw=1.5, label=name)
        ax.plot(*path[-1], "o", color=color)
    ax.plot(0, 0, "kx")
    ax.set(xlabel="x", ylabel="y", title="f(x, y) = 30000 (xy − 0.005)²", aspect="equal")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(out / "fig4.png", dpi=110)
    plt.close(fig)
    end = {k: v[-1].tolist() for k, v in paths.items()} | {"obar_mu0_100": strong[-1].tolist()}
    write_json_atomic(
        out / "fig4.json",
        {
            "figure": "Fig. 4",
            "settings": settings,
            "mu0": {"obar": 20.0, "obar_mu0_100": 100.0},
            "end_points": end,
            "paths": {k: v[::20].round(8).tolist() for k, v in paths.items()}
            | {"obar_mu0_100": strong[::20].round(8).tolist()},
        },
    )
    return [out / "fig4.png"]


def _per_config(res: ToyResult, entry: Callable[[str, np.ndarray], dict]) -> dict:
    """``{problem: {method: {noise: entry(problem, row indices over seeds)}}}`` for present rows."""
    out: dict = {}
    for p in PROBLEMS:
        for m in TOY_METHODS:
            for a in res.config.noise_levels:
                idx = res.select(p, m, a)
                if len(idx):
                    out.setdefault(p, {}).setdefault(m, {})[f"{a:g}"] = entry(p, idx)
    return out


def summarize(res: ToyResult) -> dict:
    """``{problem: {method: {noise: {"B0", "B_final", "B_threshold"}}}}`` (means over seeds)."""
    return _per_config(
        res,
        lambda p, idx: {
            "B0": float(res.abs_B[idx, 0].mean()),
            "B_final": float(res.abs_B[idx, -1].mean()),
            "B_threshold": float(np.mean(res.threshold[idx])) if p == "nop" else None,
        },
    )


def finals(res: ToyResult) -> dict:
    """Per (problem, method, noise), means over seeds: final |x|, |y|, the fitted product (NOP:
    (x y^T)_00, target 0.5; OP: x^T y, target 0.5), and Corollary 1's threshold averaged over the
    second half of the run.  (SAM's |B| = 0 can mean a collapse to the saddle x = y = 0.)"""

    def entry(p: str, idx: np.ndarray) -> dict:
        x, y = res.x[idx], res.y[idx]
        fit = x[:, 0] * y[:, 0] if p == "nop" else (x * y).sum(axis=1)
        return {
            "x_norm": float(np.linalg.norm(x, axis=1).mean()),
            "y_norm": float(np.linalg.norm(y, axis=1).mean()),
            "fit": float(fit.mean()),
            "B_threshold_late": float(np.mean(res.threshold_late[idx])) if p == "nop" else None,
        }

    return _per_config(res, entry)


def make_figures(
    which: str,
    cfg: ToyConfig,
    out: str | Path,
    *,
    fig2b_noise: float = 1.0,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Simulate what ``which`` needs, write its figures and data to ``out``; return what was
    written."""
    if which not in FIGURES:
        raise ValueError(f"Invalid figure: {which!r} (expected one of {FIGURES})")
    if fig2b_noise not in cfg.noise_levels and which in ("fig2", "all"):
        raise ValueError(
            f"Invalid fig2b_noise: {fig2b_noise} (not among noise levels {cfg.noise_levels})"
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: dict = {"figures": [], "seconds": None}
    methods = {
        "fig1": ("sgd", "sam"),
        "fig2": ("sgd", "sam", "nbar", "obar", "explicit", "sbar"),
        "all": TOY_METHODS,
    }.get(which)
    if methods is not None:
        problems = ("nop",) if which == "fig2" else PROBLEMS
        done = 0

        def tick(n: int) -> None:
            nonlocal done
            done += n
            if progress is not None:
                progress("simulate", done, cfg.steps)

        res = simulate(cfg, problems=problems, methods=methods, progress=tick)
        written["seconds"] = res.seconds
        write_json_atomic(
            out / "config.json",
            {
                "config": cfg.to_dict(),
                "problems": list(problems),
                "methods": list(methods),
                "simulate_seconds": res.seconds,
            },
        )
        if which in ("fig1", "all"):
            written["figures"] += plot_fig1(res, out)
        if which in ("fig2", "all"):
            written["figures"] += plot_fig2(res, out, fig2b_noise)
        if which in ("fig2", "all"):  # fig2: NOP only
            summary = summarize(res)
            write_json_atomic(out / "summary.json", summary)
            write_json_atomic(out / "finals.json", finals(res))
            written["summary"] = summary
    if which in ("fig4", "all"):
        written["figures"] += plot_fig4(out)
    return written
