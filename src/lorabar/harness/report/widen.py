"""``compare --widen-edges N``: up to N rounds, after tuning, that move a dev choice off the edge
of its grid.

A round takes every choice at the edge of what its task and method tried
(`lorabar.harness.report.edges.edges()`: lr 5e-4 the largest of {1e-4, 3e-4, 5e-4}) and
runs, on the tuning seed, the chosen setting with that one value moved to the next value of the
grid's geometric step (8.33e-4), the other settings as chosen.  Dev selection then sees the new
run beside the old ones; a choice still at the edge gets the next value in the next round, an
interior one none.  Values are rounded to three significant digits (integers stay integers); a
value already tried, a step that cannot continue (an edge at 0) and a setting the config refuses
(``mu0 * lr >= 1``, say) are left alone -- the choice stays flagged at its edge.  The seed stage
runs whatever is chosen after the last round.  Only the ``own-lr`` protocol widens (every method
tunes its own lr there; ``compare`` refuses it with another protocol).
"""

from __future__ import annotations

from collections.abc import Callable

from ..run.registry import METHODS
from ..run.result import RunRecord
from .edges import edges
from .selection import select

__all__ = ["check_widen", "widen_grid", "widen_round"]


def check_widen(rounds: int, protocol: str) -> int:
    """``rounds`` if ``--widen-edges`` can mean it under ``protocol`` (settings-from included:
    it tunes nothing); else ``ValueError``."""
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
        raise ValueError(f"Invalid --widen-edges: {rounds!r} (expected an integer >= 0)")
    if rounds and protocol != "own-lr":
        raise ValueError(
            f"Invalid --widen-edges: the {protocol!r} protocol does not tune every "
            "method's own lr (widening needs --protocol own-lr)"
        )
    return rounds


def widen_grid(
    results: list[RunRecord], base: dict, tuning_seed: int, mine: Callable[[str, str], bool]
) -> dict:
    """The next round as a grid dict (``{"base": base, "variant": [...]}``, no variant when no
    choice is at an edge); ``mine(task, method)``: whether a choice is this comparison's."""
    chosen = select(results)
    variants = []
    for edge in edges(results):
        runs = chosen[(edge["task"], edge["method"])]
        c = {**runs[0]["config"], "task": runs[0].recorded_task}
        entry = METHODS[c["method"]]
        keys = ["lr", *entry.reads(c)]
        if edge["next"] is None or edge["name"] not in keys or not mine(edge["task"], c["method"]):
            continue
        variant = {
            "task": c["task"],
            "method": c["method"],
            "seed": [tuning_seed],
            **{k: c[k] for k in (*keys, "weight_decay") if k in c},
        }
        value = _rounded(edge["next"], edge["value"])
        if value in edge["tried"] or not _valid(
            {"base": base, "variant": [variant]}, edge["name"], value
        ):
            continue
        variant[edge["name"]] = value
        variants.append(variant)
    return {"base": base, "variant": variants}


def _rounded(value: float, like) -> float | int:
    """Three significant digits; an integer setting's next value as an integer."""
    return round(value) if isinstance(like, int) else float(f"{value:.3g}")


def _valid(grid: dict, name: str, value) -> bool:
    """Whether the config accepts the variant with ``name = value``."""
    from ..plan.grid import expand

    try:
        expand({**grid, "variant": [{**grid["variant"][0], name: value}]})
    except ValueError:
        return False
    return True


def widen_round(
    base: dict, tuning_seed: int, tasks: set[str], methods: tuple[str, ...]
) -> Callable:
    """A comparison's round as a stage's ``make(load)`` (`widen_grid()` over the runs
    finished so far, for choices of ``tasks`` and ``methods`` only)."""
    return lambda load: widen_grid(
        load(), base, tuning_seed, lambda task, method: task in tasks and method in methods
    )
