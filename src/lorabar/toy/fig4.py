"""Paper Fig. 4 / Appendix A.6: why BAR regularizes instead of constraining |x| = |y|.

f(x, y) = 30000 (x y - 0.005)^2 on R^2 is symmetric about the line x = -y (where |x| = |y|).
Near that line, u = x + y is an unstable direction (moving off the line lowers the loss), so
plain gradient descent started slightly off it escapes to the minimizers x y = 0.005.  Projecting
onto the hard constraint |x| = |y| after every step resets u to 0, and the iterate slides to the
saddle point (0, 0).  A balancedness regularizer (oBAR, or the explicit penalty) only nudges the
iterate towards |x| = |y| at rate alpha * eta per step, far slower than the escape, so it
converges to a minimizer too, and to a balanced one.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fig4_loss", "fig4_trajectories"]

SCALE, TARGET = 30000.0, 0.005


def fig4_loss(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return SCALE * (x * y - TARGET) ** 2


def _grad(x: float, y: float) -> tuple[float, float]:
    c = 2.0 * SCALE * (x * y - TARGET)
    return c * y, c * x


def _project_abs_equal(x: float, y: float) -> tuple[float, float]:
    """Nearest point of {|x| = |y|}: the nearer of the lines x = y and x = -y."""
    if abs(x + y) <= abs(x - y):  # nearer to x = -y
        d = (x - y) / 2
        return d, -d
    s = (x + y) / 2
    return s, s


def fig4_trajectories(
    start: tuple[float, float] = (0.25, -0.24),
    eta: float = 2e-5,
    steps: int = 4000,
    mu0: float = 20.0,
) -> dict[str, np.ndarray]:
    """Gradient-descent paths (steps+1, 2) for: plain GD, GD projected onto |x| = |y|, GD + oBAR."""
    if not 0 < mu0 * eta < 1:
        raise ValueError(f"Invalid mu0: {mu0} (oBAR needs 0 < mu0 * eta < 1, eta={eta})")
    paths = {}
    for name in ("gd", "hard_constraint", "obar"):
        x, y = start
        if name == "hard_constraint":
            x, y = _project_abs_equal(x, y)
        path = [(x, y)]
        for _ in range(steps):
            gx, gy = _grad(x, y)
            if name == "obar":  # Alg. 3: shrink the larger factor, grow the smaller
                c = mu0 * eta
                fx, fy = (1 - c, 1 + c) if abs(x) >= abs(y) else (1 + c, 1 - c)
                x, y = x * fx, y * fy
            x, y = x - eta * gx, y - eta * gy
            if name == "hard_constraint":
                x, y = _project_abs_equal(x, y)
            path.append((x, y))
        paths[name] = np.array(path)
    return paths
