"""Schedules for BAR's coefficient: pure functions of the optimizer step.

BAR uses ``alpha_t = mu0 * schedule(t)`` (paper Sec. 5.2, "Schedule of alpha_t"): the implicit
regularization of SAM weakens once the factors are balanced or near a minimum, so a decaying
coefficient is the natural choice.  Each factory returns a function ``t -> float`` in the spirit
of optax schedules; any other callable of the same shape works too.

    constant():            s(t) = 1
    linear(T):             s(t) = max(0, 1 - t / T)
    cosine(T):             s(t) = (1 + cos(pi * min(t, T) / T)) / 2

``t`` counts the optimizer steps that BAR has been applied on, starting at 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from . import _names
from . import _validate as _v

Schedule = Callable[[int], float]

__all__ = ["Schedule", "check_total_steps", "constant", "cosine", "linear", "resolve"]

NAMES = _names.SCHEDULES


def check_total_steps(total_steps: object) -> int:
    """``total_steps``, refused unless an integer >= 1 (the horizon of a decaying schedule)."""
    _v.integer("total_steps", total_steps, 1)
    return total_steps


def constant() -> Schedule:
    """``s(t) = 1`` for every step."""

    def schedule(step: int) -> float:
        return 1.0

    schedule.__qualname__ = "constant()"
    return schedule


def linear(total_steps: int) -> Schedule:
    """Decay linearly from 1 at ``t = 0`` to 0 at ``t = total_steps`` (and stay at 0)."""
    total = check_total_steps(total_steps)

    def schedule(step: int) -> float:
        return max(0.0, 1.0 - step / total)

    schedule.__qualname__ = f"linear(total_steps={total})"
    return schedule


def cosine(total_steps: int) -> Schedule:
    """Half-cosine decay from 1 at ``t = 0`` to 0 at ``t = total_steps`` (and stay at 0)."""
    total = check_total_steps(total_steps)

    def schedule(step: int) -> float:
        return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))

    schedule.__qualname__ = f"cosine(total_steps={total})"
    return schedule


def resolve(schedule: str | Schedule, total_steps: int | None = None) -> Schedule:
    """Turn a schedule name (``"constant"``, ``"linear"``, ``"cosine"``) or a callable into a
    callable.

    Decaying schedules given by name need ``total_steps``.
    """
    if callable(schedule):
        return schedule
    if not isinstance(schedule, str):
        raise TypeError(
            f"Invalid schedule: {schedule!r} (expected one of {NAMES} or a callable step -> float)"
        )
    if schedule == "constant":
        return constant()
    if schedule in ("linear", "cosine"):
        if total_steps is None:
            raise ValueError(f"Invalid total_steps: None (schedule={schedule!r} needs total_steps)")
        return linear(total_steps) if schedule == "linear" else cosine(total_steps)
    raise ValueError(f"Invalid schedule: {schedule!r} (expected one of {NAMES} or a callable)")
