"""How a report names and orders what it shows: tasks (the paper's Table 1 order), methods
(the registry's order and labels), a method "unit" (the method, with its context under
``--allow-mixed``), a setting's hyperparameters, the scale of a metric."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..run.registry import METHODS
from ..run.result import MethodUnit, RunRecord


class _RegistryOrder(Sequence):
    """The registry's method order, read when asked (a method registered later included)."""

    def __getitem__(self, i):
        return tuple(METHODS)[i]

    def __len__(self) -> int:
        return len(METHODS)


class _RegistryLabels(Mapping):
    """Each method's label in tables, read from the registry when asked."""

    def __getitem__(self, name: str) -> str:
        return METHODS[name].label

    def __iter__(self):
        return iter(METHODS)

    def __len__(self) -> int:
        return len(METHODS)


METHOD_ORDER = _RegistryOrder()
LABELS = _RegistryLabels()
# The paper's Table 1 order first, then the other tasks.
TASK_ORDER = (
    "sst2",
    "sst5",
    "snli",
    "mnli",
    "rte",
    "trec",
    "mrpc",
    "cola",
    "qnli",
    "qqp",
    "stsb",
    "cb",
    "copa",
    "webnlg",
)


def task_order(task: str) -> tuple[int, str]:
    """The paper's Table 1 order first, then the other tasks alphabetically."""
    return (TASK_ORDER.index(task) if task in TASK_ORDER else len(TASK_ORDER), task)


def label_of(unit: MethodUnit | str) -> str:
    """A unit's (or a method's) label in tables, its context in brackets after it."""
    unit = MethodUnit(unit) if isinstance(unit, str) else unit
    return str(unit.of(LABELS.get(unit.method, unit.method)))


def units_of(chosen: dict) -> list[MethodUnit]:
    """The methods (with their context under --allow-mixed) present, in the registry's order."""
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    return sorted({u for _, u in chosen}, key=lambda u: (order.get(u.method, len(order)), str(u)))


def context_columns(results: list[RunRecord]) -> list[str]:
    """The names of the context values the runs are compared in (none: one context)."""
    return next((list(r.context_columns) for r in results if r.context_columns), [])


def cells(unit: MethodUnit) -> list[str]:
    """The method's label, then its context values under --allow-mixed."""
    return [LABELS.get(unit.method, unit.method), *unit.context]


def hparams_text(run: RunRecord) -> str:
    c = run["config"]
    method = METHODS.get(c["method"])
    if method is not None and not method.trains:
        return "untrained"
    keys = ["lr", "targets", "pooling", "steps"] + list(method.reads(c) if method else ())
    return ", ".join(
        f"{k}={c[k]}" for k in keys if k in c and not (k == "sam_perturbation" and c[k] == "sync")
    )


def metric_scale(name: str) -> float:
    """How a recorded value of metric ``name`` is shown: its declaration's scale
    (`lorabar.harness.run.registry.METRICS`: fractions x100, BLEU and log-likelihoods as
    they are)."""
    from ..run.registry import metric

    return metric(name).scale
