"""A result as the harness reads it back.

`RunRecord` is one run's result file, read and checked (`lorabar.harness.report.load()`), with
what reading decides beside it as typed fields: where it was read, the config a report reads (a
task of your own data named from its content), the primary metric (a staged task's, App. D.4)
and the `MethodUnit` it is compared as.  The file's own fields are read by key, as the file
names them (``record["metrics"]["dev"]``); nothing is ever added to them.

`MethodUnit` is what a report compares: a method, and under ``--allow-mixed`` its context (the
values of the settings that differ between runs shown side by side, never paired).  Its text is
the method's name, then the context in brackets: ``lora [fp32, 1]``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["MethodUnit", "RunRecord"]


@dataclasses.dataclass(frozen=True, order=True)
class MethodUnit:
    """A method, with the values of the context it ran in (``()``: the only context)."""

    method: str
    context: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.method, str) or not self.method:
            raise ValueError(f"Invalid method unit: method {self.method!r} (a method's name)")
        object.__setattr__(self, "context", tuple(str(v) for v in self.context))

    def __str__(self) -> str:
        return self.method + (f" [{', '.join(self.context)}]" if self.context else "")

    def of(self, method: str) -> MethodUnit:
        """``method`` in this unit's context (the baseline a unit is paired with)."""
        return dataclasses.replace(self, method=method)


@dataclasses.dataclass(frozen=True, eq=False)
class RunRecord(Mapping):
    """One result file as read (see the module docstring); read-only.

    ``data``: the file's fields as signed; ``path``: where it was read (or a description, for a
    run only planned); ``config``: the config a report reads; ``primary_metric``: the metric
    selection and reports use; ``unit``: what it is compared as; ``context_columns``: the names
    of ``unit.context``'s values.

    By key it reads the file's keys, with the report's view of two: ``record["config"]`` is
    ``config`` and ``record["primary_metric"]`` is ``primary_metric`` (``dict(record)`` too);
    the file as signed is ``record.data``.  Read-only at the top (a record is never tagged in
    flight); the nested dicts are the file's own, not copies: read them, never write them."""

    data: Mapping[str, Any]
    path: str
    config: Mapping[str, Any]
    primary_metric: str
    unit: MethodUnit
    context_columns: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        data: Mapping[str, Any],
        path: str = "",
        *,
        config: Mapping | None = None,
        primary_metric: str | None = None,
    ) -> RunRecord:
        """The record of a result's fields ``data`` read from ``path``, compared as its method."""
        config = data["config"] if config is None else config
        metric = data.get("primary_metric", "") if primary_metric is None else primary_metric
        return cls(data, str(path), config, metric, MethodUnit(config["method"]))

    @property
    def recorded_task(self) -> str:
        """The task as the run's own config names it (``custom`` for your own data files)."""
        return self.data["config"]["task"]

    def in_context(self, context: tuple[str, ...], columns: tuple[str, ...]) -> RunRecord:
        """This record compared as its method in ``context`` (``columns``: its values' names)."""
        unit = MethodUnit(self.unit.method, context)
        return dataclasses.replace(self, unit=unit, context_columns=tuple(columns))

    def __getitem__(self, key: str) -> Any:
        value = self.data[key]  # the file's keys, no other
        if key == "config":
            return self.config
        if key == "primary_metric":
            return self.primary_metric
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)
