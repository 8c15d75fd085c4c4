"""A simulator for the paper's toy scale-invariant problems, batched over configurations.

Problems (paper Appendix A.4), x, y in R^3, x0 = [0.2, -0.1, 0.3], y0 = -3 x0:

    NOP (eq. 11):  f(x, y) = E |x y^T - (A + alpha N)|^2,  A = diag(0.5, 0, 0),
                   N = diag(1.0, 0.8, 0.5) U with U a fresh 3x3 standard Gaussian each step
    OP  (eq. 12):  f(x, y) = E (x^T y - (a + alpha n))^2,   a = 0.5, n ~ N(0, 1)

With G = grad_W f(W) at W = x y^T (NOP) the stochastic gradients are g_x = G y, g_y = G^T x
(eq. 3); for OP, g_x = f' y and g_y = f' x (eq. 14).  Methods, with g = (g_x, g_y):

    sgd       w <- w - eta g                                          (eq. 2)
    sngd      w <- w - eta g / |g|                                    (eq. 15)
    sam       w <- w - eta g(w + rho g / |g|), same minibatch         (eqs. 4, 7)
    sam_m     m-sharpness: a minibatch of m samples, one SAM perturbation per sample and
              the mean of the perturbed gradients                     (eq. 38)
    nbar      BAR (Alg. 2) with alpha_t = mu0, then SGD
    obar      BAR (Alg. 3) with alpha_t = mu0, then SGD
    explicit  SGD on f + lam |(|x|^2 - |y|^2)|                        (Sec. 5.2, Fig. 2(b))
    sbar      sBAR (lorabar.BAR mode="sbar", rho as SAM's): x <- (1 + c) x, y <- (1 - c) y with
              c = clamp(eta rho (|g_x|^2 - |g_y|^2) / (|g| (|x|^2 + |y|^2)), -1/2, 1/2), then SGD

Every configuration (problem x method x noise level x seed) is one row of a batch; a compiled
loop (numba, parallel over rows) runs all rows for all steps.  Noise is drawn per seed and shared
by every method and noise level of that seed (common random numbers), so differences between
methods are not sampling noise.  The per-step math is the single implementation; the tests check
its SAM and BAR steps against [`lorabar.SAM`][lorabar.sam.SAM] and [`lorabar.BAR`][lorabar.bar.BAR]
on torch tensors.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np

from .. import _validate as _v
from ._jit import HAVE_NUMBA, njit, prange
from .grid import PROBLEMS, TOY_METHODS, ToyConfig, ToyResult

__all__ = ["TOY_METHODS", "PROBLEMS", "ToyConfig", "ToyResult", "X0", "simulate"]

X0 = (0.2, -0.1, 0.3)
NOP_A = 0.5  # A = diag(NOP_A, 0, 0)
NOP_SCALE = (1.0, 0.8, 0.5)  # N = diag(NOP_SCALE) U
OP_A = 0.5

# indices into the per-row statistics array
_GAP_SUM, _GAP_NORM_SUM, _THR_SUM, _THR_N, _STEPS, _THR_LATE_SUM, _THR_LATE_N = range(7)


# --------------------------------------------------------------------------- the math
@njit(inline="always")
def _target(problem, noise, s, t, first, count, level, tgt):
    """The minibatch mean target A + level * mean(N_k) over samples first..first+count-1."""
    inv = 1.0 / count
    if problem == 0:
        for i in range(3):
            for j in range(3):
                acc = 0.0
                for k in range(first, first + count):
                    acc += noise[s, t, k, 3 * i + j]
                scale = 1.0 if i == 0 else (0.8 if i == 1 else 0.5)
                base = 0.5 if (i == 0 and j == 0) else 0.0
                tgt[3 * i + j] = base + level * scale * acc * inv
    else:
        acc = 0.0
        for k in range(first, first + count):
            acc += noise[s, t, k, 0]
        tgt[0] = 0.5 + level * acc * inv


@njit(inline="always")
def _grad(problem, x, y, tgt, g):
    """g[:3] = g_x, g[3:] = g_y of the loss with target ``tgt`` at (x, y)."""
    if problem == 0:
        for i in range(6):
            g[i] = 0.0
        for i in range(3):
            for j in range(3):
                gij = 2.0 * (x[i] * y[j] - tgt[3 * i + j])
                g[i] += gij * y[j]
                g[3 + j] += gij * x[i]
    else:
        fp = 2.0 * (x[0] * y[0] + x[1] * y[1] + x[2] * y[2] - tgt[0])
        for i in range(3):
            g[i] = fp * y[i]
            g[3 + i] = fp * x[i]


@njit(inline="always")
def _sam_grad(problem, x, y, g, rho, tgt, xt, yt, gt):
    """gt = the gradient at (x, y) + rho g / |g| (no perturbation when g = 0), eqs. (4)/(7)."""
    n2 = 0.0
    for i in range(6):
        n2 += g[i] * g[i]
    e = rho / math.sqrt(n2) if n2 > 0.0 else 0.0
    for i in range(3):
        xt[i] = x[i] + e * g[i]
        yt[i] = y[i] + e * g[3 + i]
    _grad(problem, xt, yt, tgt, gt)


@njit(inline="always")
def _record_stats(r, p, x2, y2, gx2, gy2, after_half, stats):
    """Accumulate the gradient gap and (problem 0) the |B| threshold of Corollary 1 / eq. (21):
    the |B| at which |g_x| = |g_y| for this x y^T and G."""
    gn2 = gx2 + gy2
    stats[r, 0] += abs(gx2 - gy2)
    if gn2 > 0.0:
        stats[r, 1] += abs(gx2 - gy2) / gn2
    if p == 0 and gx2 > 0.0 and gy2 > 0.0 and x2 > 0.0 and y2 > 0.0:
        xn = math.sqrt(x2)
        yn = math.sqrt(y2)
        abar2 = math.sqrt(gx2 / gy2) * xn / yn
        thr = 0.5 * xn * yn * abs(abar2 - 1.0 / abar2)
        stats[r, 2] += thr
        stats[r, 3] += 1.0
        if after_half:
            stats[r, 5] += thr
            stats[r, 6] += 1.0


@njit(inline="always")
def _sam_m_grad(p, x, y, noise, s, t, b, level, rho, tgt, xt, yt, gt, gk, acc):
    """SAM with m-sharpness: the mean over the b samples of each one's SAM gradient."""
    for i in range(6):
        acc[i] = 0.0
    for k in range(b):
        _target(p, noise, s, t, k, 1, level, tgt)
        _grad(p, x, y, tgt, gk)
        _sam_grad(p, x, y, gk, rho, tgt, xt, yt, gt)
        for i in range(6):
            acc[i] += gt[i] / b


@njit(inline="always")
def _scaled_step(x, y, g, fx, fy, eta):
    """x <- fx x - eta g_x, y <- fy y - eta g_y (fx = fy = 1: plain SGD)."""
    for i in range(3):
        x[i] = x[i] * fx - eta * g[i]
        y[i] = y[i] * fy - eta * g[3 + i]


@njit(inline="always")
def _rescale_factors(meth, x2, y2, gx2, gy2, gn2, eta, rho, c):
    """(fx, fy) of sbar (7: SAM's first-order drift of B), nbar (4) and obar (5)."""
    if meth == 7:
        cs = 0.0
        if gn2 > 0.0 and x2 + y2 > 0.0:
            cs = eta * rho * (gx2 - gy2) / (math.sqrt(gn2) * (x2 + y2))
            cs = min(0.5, max(-0.5, cs))
        return 1.0 + cs, 1.0 - cs
    grow_x = gx2 >= gy2 if meth == 4 else not (x2 >= y2)
    return (1.0 + c, 1.0 - c) if grow_x else (1.0 - c, 1.0 + c)


@njit(inline="always")
def _update(meth, p, x, y, g, x2, y2, gx2, gy2, eta, lam, rho, c, tgt, xt, yt, gt):
    """One step of method ``meth`` from the minibatch gradient ``g`` (SAM-m is the caller's)."""
    gn2 = gx2 + gy2
    if meth == 6:  # explicit regularizer lam * |(|x|^2 - |y|^2)|
        sgn = 1.0 if x2 > y2 else (-1.0 if x2 < y2 else 0.0)
        for i in range(3):
            g[i] += 2.0 * lam * sgn * x[i]
            g[3 + i] -= 2.0 * lam * sgn * y[i]
    if meth == 0 or meth == 6:  # sgd, explicit
        _scaled_step(x, y, g, 1.0, 1.0, eta)
    elif meth == 1:  # sngd
        if gn2 > 0.0:
            inv = 1.0 / math.sqrt(gn2)
            for i in range(3):
                x[i] -= eta * g[i] * inv
                y[i] -= eta * g[3 + i] * inv
    elif meth == 2:  # sam
        _sam_grad(p, x, y, g, rho, tgt, xt, yt, gt)
        _scaled_step(x, y, gt, 1.0, 1.0, eta)
    else:  # sbar (7), nbar (4), obar (5): rescale, then the SGD step with the same gradient
        fx, fy = _rescale_factors(meth, x2, y2, gx2, gy2, gn2, eta, rho, c)
        _scaled_step(x, y, g, fx, fy, eta)


@njit(parallel=True)
def _run_chunk(
    problem,
    method,
    level,
    seed_idx,
    rho,
    mu0,
    lam,
    batch,
    eta,
    xs,
    ys,
    noise,
    t0,
    every,
    half,
    abs_b,
    gap,
    stats,
):  # pragma: no cover - compiled
    rows = xs.shape[0]
    steps = noise.shape[1]
    for r in prange(rows):
        x = xs[r].copy()
        y = ys[r].copy()
        tgt, g, gt = np.empty(9), np.empty(6), np.empty(6)
        xt, yt, acc, gk = np.empty(3), np.empty(3), np.empty(6), np.empty(6)
        p, meth, s, b = problem[r], method[r], seed_idx[r], batch[r]
        c = mu0[r] * eta
        window = 0.0
        for t in range(steps):
            _target(p, noise, s, t, 0, b, level[r], tgt)
            _grad(p, x, y, tgt, g)
            gx2 = g[0] * g[0] + g[1] * g[1] + g[2] * g[2]
            gy2 = g[3] * g[3] + g[4] * g[4] + g[5] * g[5]
            x2 = x[0] * x[0] + x[1] * x[1] + x[2] * x[2]
            y2 = y[0] * y[0] + y[1] * y[1] + y[2] * y[2]
            window += abs(gx2 - gy2)
            _record_stats(r, p, x2, y2, gx2, gy2, t0 + t >= half, stats)
            if meth == 3:  # sam with m-sharpness: one perturbation per sample
                _sam_m_grad(p, x, y, noise, s, t, b, level[r], rho[r], tgt, xt, yt, gt, gk, acc)
                _scaled_step(x, y, acc, 1.0, 1.0, eta)
            else:
                _update(meth, p, x, y, g, x2, y2, gx2, gy2, eta, lam[r], rho[r], c, tgt, xt, yt, gt)
            stats[r, 4] += 1.0
            if (t0 + t + 1) % every == 0:
                k = (t0 + t + 1) // every
                if k < abs_b.shape[1]:
                    abs_b[r, k] = 0.5 * abs(
                        (x[0] * x[0] + x[1] * x[1] + x[2] * x[2])
                        - (y[0] * y[0] + y[1] * y[1] + y[2] * y[2])
                    )
                    gap[r, k] = window / every
                window = 0.0
        xs[r, :] = x
        ys[r, :] = y


# --------------------------------------------------------------------------- driver
def _rows(cfg: ToyConfig, problems: Sequence[str], methods: Sequence[str]):
    rows = []
    for p in problems:
        for meth in methods:
            for lvl in cfg.noise_levels:
                for s in range(cfg.seeds):
                    rows.append((p, meth, lvl, s))
    return rows


def simulate(
    cfg: ToyConfig | None = None,
    problems: Sequence[str] = PROBLEMS,
    methods: Sequence[str] = TOY_METHODS,
    *,
    noise: np.ndarray | None = None,
    batch: dict[str, int] | None = None,
    chunk: int = 20_000,
    progress: Callable[[int], None] | None = None,
) -> ToyResult:
    """Run every (problem, method, noise level, seed) row for ``cfg.steps`` steps.

    Args:
        noise: optional standard-normal draws of shape ``(seeds, steps, samples, 9)`` to use
            instead of fresh ones (the tests feed the same draws to torch).
        batch: minibatch size per method (default ``cfg.batch``; ``sam_m`` uses ``cfg.m``
            samples, one perturbation each).
        chunk: steps per compiled call (bounds the memory of the noise buffer).
        progress: called with the number of steps finished after each chunk.
    """
    cfg = cfg or ToyConfig()
    _v.integer("chunk", chunk, 1)
    rows, arrays, samples = _row_arrays(cfg, problems, methods, batch)
    every, points = cfg.every, cfg.steps // cfg.every
    xs, ys, stats, abs_b, gap = _start_state(len(rows), points)
    noise = _checked_noise(noise, cfg, samples)
    gens = [np.random.default_rng([cfg.seed_base, s]) for s in range(cfg.seeds)]
    start = time.perf_counter()
    for done in range(0, cfg.steps, chunk):
        c = min(chunk, cfg.steps - done)
        if noise is None:
            buf = np.stack([g.standard_normal((c, samples, 9)) for g in gens])
        else:
            buf = np.ascontiguousarray(noise[: cfg.seeds, done : done + c, :samples])
        _run_chunk(*arrays, cfg.eta, xs, ys, buf, done, every, cfg.steps // 2, abs_b, gap, stats)
        if progress is not None:
            progress(c)
    seconds = time.perf_counter() - start

    def average(total: int, count: int) -> np.ndarray:
        ok = (arrays[0] == 0) & (stats[:, count] > 0)
        return np.where(ok, stats[:, total] / np.maximum(stats[:, count], 1), np.nan)

    names = ("problem", "method", "noise", "seed")
    columns = {k: [r[i] for r in rows] for i, k in enumerate(names)}
    return ToyResult(
        config=cfg,
        **columns,
        steps=np.arange(points + 1) * every,
        abs_B=abs_b,
        gap=gap,
        threshold=average(_THR_SUM, _THR_N),
        threshold_late=average(_THR_LATE_SUM, _THR_LATE_N),
        gap_sum=stats[:, _GAP_SUM].copy(),
        gap_norm_sum=stats[:, _GAP_NORM_SUM].copy(),
        x=xs,
        y=ys,
        seconds=seconds,
    )


def _start_state(n: int, points: int) -> tuple[np.ndarray, ...]:
    """``(x, y, stats, |B| log, gap log)`` of ``n`` rows at the start, ``y = -3 x``, ``x = X0``
    (|B| at step 0 logged)."""
    x0 = np.array(X0, dtype=np.float64)
    xs, ys, stats = np.tile(x0, (n, 1)), np.tile(-3.0 * x0, (n, 1)), np.zeros((n, 7))
    abs_b, gap = np.full((n, points + 1), np.nan), np.full((n, points + 1), np.nan)
    abs_b[:, 0] = 0.5 * abs(x0 @ x0 - 9.0 * x0 @ x0)
    return xs, ys, stats, abs_b, gap


def _checked_noise(noise: np.ndarray | None, cfg: ToyConfig, samples: int) -> np.ndarray | None:
    """Given draws as a contiguous float64 array, refused unless they cover every seed, step
    and sample."""
    if noise is None:
        return None
    if noise.shape[0] < cfg.seeds or noise.shape[1] < cfg.steps or noise.shape[2] < samples:
        raise ValueError(
            f"Invalid noise: shape {noise.shape} (need >= ({cfg.seeds}, {cfg.steps}, {samples}, 9))"
        )
    return np.ascontiguousarray(noise, dtype=np.float64)


def _row_arrays(cfg: ToyConfig, problems, methods, batch) -> tuple[list, tuple, int]:
    """The rows (checked), the per-row arrays ``_run_chunk`` reads (problem, method, level,
    seed, rho, mu0, lam, batch size) and the samples per step the noise buffer needs."""
    for p in problems:
        if p not in PROBLEMS:
            raise ValueError(f"Invalid problem: {p!r} (expected one of {PROBLEMS})")
    for meth in methods:
        if meth not in TOY_METHODS:
            raise ValueError(f"Invalid method: {meth!r} (expected one of {TOY_METHODS})")
    rows = _rows(cfg, problems, methods)
    sizes = {meth: cfg.batch for meth in TOY_METHODS}
    sizes["sam_m"] = cfg.m
    sizes.update(batch or {})
    arrays = (
        np.array([PROBLEMS.index(r[0]) for r in rows], dtype=np.int64),
        np.array([TOY_METHODS.index(r[1]) for r in rows], dtype=np.int64),
        np.array([r[2] for r in rows], dtype=np.float64),
        np.array([r[3] for r in rows], dtype=np.int64),
        np.array([cfg.rho[r[0]] for r in rows], dtype=np.float64),
        np.array([cfg.mu0[r[0]] for r in rows], dtype=np.float64),
        np.array([cfg.lam[r[0]] for r in rows], dtype=np.float64),
        np.array([sizes[r[1]] for r in rows], dtype=np.int64),
    )
    return rows, arrays, max(sizes[meth] for meth in methods)


def compiled() -> bool:
    """Whether the simulator runs compiled (numba installed)."""
    return HAVE_NUMBA
