"""The one place argument checks are written (torch-free): every public constructor and config
calls these, so every message reads ``Invalid <name>: <value> (<what was expected>)``.

With ``flag`` (command-line facing: configs that back CLI flags) the expectation names the flag,
``(--steps expects an integer >= 1)``; without it (the Python API)
``(expected an int >= 1)``.  A value of the wrong type is a ``TypeError`` in the API (``True`` is
not a number here), a ``ValueError`` behind a flag (argparse already parsed the type).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

__all__ = ["boolean", "choice", "flag_of", "integer", "number"]


def flag_of(name: str) -> str:
    """``--batch-size`` for ``batch_size``."""
    return "--" + name.replace("_", "-")


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float)


def integer(name: str, value: Any, low: int, *, flag: str | None = None, suffix: str = "") -> int:
    """``value`` if it is an int ``>= low``; else ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        expects = f"{flag} expects an integer" if flag else "expected an int"
        raise ValueError(f"Invalid {name}: {value!r}{suffix} ({expects} >= {low})")
    return value


def number(
    name: str,
    value: Any,
    *,
    low: float | None = 0.0,
    strict: bool = False,
    high: float | None = None,
    flag: str | None = None,
    suffix: str = "",
    nonfinite: type[Exception] = ValueError,
) -> float:
    """``value`` if it is a finite int or float with ``low <= value`` (``<`` when ``strict``) and
    ``value < high``; else ``TypeError`` (API, wrong type) or ``ValueError``.  ``nonfinite``:
    the error a NaN/inf raises (``balance_penalty`` keeps 0.1's ``TypeError``)."""
    rel = ">" if strict else ">="
    bound = "" if low is None else f" {rel} {low:g}"
    if high is not None:
        bound += f" and < {high:g}"
    if flag:
        ok = _is_number(value) and math.isfinite(value)
        if ok and low is not None:
            ok = value > low if strict else value >= low
        if ok and high is not None:
            ok = value < high
        if not ok:
            raise ValueError(
                f"Invalid {name}: {value!r}{suffix} ({flag} expects a finite number{bound})"
            )
        return value
    if not _is_number(value):
        raise TypeError(f"Invalid {name}: {value!r}{suffix} (expected a float)")
    if not math.isfinite(value):
        raise nonfinite(f"Invalid {name}: {value!r}{suffix} (expected a finite value{bound})")
    if (
        low is not None
        and not (value > low if strict else value >= low)
        or high is not None
        and not value < high
    ):
        raise ValueError(f"Invalid {name}: {value!r}{suffix} (expected a finite value{bound})")
    return value


def boolean(name: str, value: Any) -> bool:
    """``value`` if it is a bool; else ``TypeError``."""
    if not isinstance(value, bool):
        raise TypeError(f"Invalid {name}: {value!r} (expected a bool)")
    return value


def choice(name: str, value: Any, choices: Iterable[Any], flag: str | None = None) -> ValueError:
    """The error for a name that is not one of ``choices`` (``raise choice(...)``), listing what
    exists: ``Invalid <name>: <value> (expected one of [...])``."""
    expects = f"{flag} expects" if flag else "expected"
    return ValueError(f"Invalid {name}: {value!r} ({expects} one of {list(choices)})")


def distinct_columns(**columns: str | None) -> None:
    """Each column flag names its own column (a text column that is the label column would
    train on the answer)."""
    seen: dict[str, str] = {}
    for name, column in columns.items():
        if column is None:
            continue
        if column in seen:
            raise ValueError(
                f"Invalid {flag_of(name)}: {column!r} is also "
                f"{flag_of(seen[column])}; each role needs its own column"
            )
        seen[column] = name
