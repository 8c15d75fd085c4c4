"""What a toy-problem grid runs (`ToyConfig`: the paper's Appendix A.4 settings where it gives
them) and what it returns (`ToyResult`: |B| and the gradient gap per row over time);
`lorabar.toy.simulate` runs it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from .. import _validate as _v

__all__ = ["PROBLEMS", "TOY_METHODS", "ToyConfig", "ToyResult"]

PROBLEMS = ("nop", "op")
TOY_METHODS = ("sgd", "sngd", "sam", "sam_m", "nbar", "obar", "explicit", "sbar")


@dataclass(frozen=True)
class ToyConfig:
    """Settings of a toy-problem grid (defaults: the paper's Appendix A.4 where it gives them).

    The paper does not print its noise levels; ``noise_levels`` is ours.  ``mu0`` (BAR) and
    ``lam`` (explicit regularizer) are per problem and were chosen so that nBAR and the explicit
    regularizer act on |B| at a rate comparable to SAM's on that problem.
    """

    steps: int = 100_000
    eta: float = 1e-4
    noise_levels: tuple[float, ...] = (0.1, 0.5, 1.0, 2.0)
    seeds: int = 3
    rho: dict[str, float] = field(default_factory=lambda: {"nop": 0.1, "op": 0.2})
    mu0: dict[str, float] = field(default_factory=lambda: {"nop": 0.3, "op": 0.3})
    lam: dict[str, float] = field(default_factory=lambda: {"nop": 0.1, "op": 0.1})
    m: int = 4
    batch: int = 1
    points: int = 1000
    seed_base: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "seeds", "m", "batch", "points"):
            _v.integer(name, getattr(self, name), 1)
        _v.number("eta", self.eta, strict=True)
        levels = tuple(float(v) for v in self.noise_levels)
        if not levels or any(not math.isfinite(v) or v < 0 for v in levels):
            raise ValueError(f"Invalid noise_levels: {self.noise_levels!r} (expected values >= 0)")
        object.__setattr__(self, "noise_levels", levels)
        for name in ("rho", "mu0", "lam"):
            d = getattr(self, name)
            for p in PROBLEMS:
                if p not in d or not math.isfinite(d[p]) or d[p] < 0:
                    raise ValueError(
                        f"Invalid {name}: {d!r} (expected a value >= 0 for {PROBLEMS})"
                    )
        if max(self.mu0.values()) * self.eta >= 1:
            raise ValueError(f"Invalid mu0: {self.mu0} (BAR needs mu0 * eta < 1)")

    @property
    def every(self) -> int:
        """Record one point every this many steps."""
        return max(1, self.steps // self.points)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ToyResult:
    """Rows of a simulated grid.

    ``abs_B`` and ``gap`` have shape ``(rows, points + 1)``: |B_t| at steps ``t = k * every``
    (column 0 is t = 0) and the mean of | |g_x|^2 - |g_y|^2 | over the steps since the previous
    point.  ``threshold`` is the time average of Corollary 1's |B̄_t| (eq. 21; NOP only, NaN for
    OP) over all steps, ``threshold_late`` over the second half.  ``gap_sum`` / ``gap_norm_sum`` are
    sums over all steps of | |g_x|^2 - |g_y|^2 | and of
    the same divided by |g|^2: SGD's and SNGD's exact drift bounds are eta^2/2 times them.
    """

    config: ToyConfig
    problem: list[str]
    method: list[str]
    noise: list[float]
    seed: list[int]
    steps: np.ndarray
    abs_B: np.ndarray
    gap: np.ndarray
    threshold: np.ndarray
    threshold_late: np.ndarray
    gap_sum: np.ndarray
    gap_norm_sum: np.ndarray
    x: np.ndarray
    y: np.ndarray
    seconds: float

    def select(self, problem: str, method: str, noise: float) -> np.ndarray:
        """Row indices of one (problem, method, noise level) over all seeds."""
        return np.array(
            [
                i
                for i in range(len(self.problem))
                if self.problem[i] == problem
                and self.method[i] == method
                and self.noise[i] == noise
            ],
            dtype=np.int64,
        )
