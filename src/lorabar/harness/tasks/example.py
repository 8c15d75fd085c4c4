"""One labelled example of a text classification or regression task."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Example"]


@dataclass(frozen=True)
class Example:
    """``text_a`` (and ``text_b`` for pairs) with its label (a class index, or a score);
    ``where`` is the ``file:line`` of its row, for messages (not part of its value)."""

    text_a: str
    text_b: str | None
    label: int | float
    where: str = field(default="", compare=False)
