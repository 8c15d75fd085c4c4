"""The task adapter of a run config: the registry's ``"<kind>/<task>"`` entry, else its
``"<kind>"`` one, imported by name (so that the registry imports no task code)."""

from __future__ import annotations

import importlib

from ..tasks.contract import TaskAdapter
from .registry import TASK_ADAPTERS

__all__ = ["make_task", "staged_primary_metric"]


def make_task(cfg) -> TaskAdapter:
    """The task adapter for ``cfg`` (`TASK_ADAPTERS`, the ``"<kind>/<task>"`` entry before the
    ``"<kind>"`` one); loads its data."""
    target = TASK_ADAPTERS.get(f"{cfg.kind}/{cfg.task}") or TASK_ADAPTERS[cfg.kind]
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)(cfg)


def staged_primary_metric(kind: str, task: str) -> str | None:
    """The primary metric of a staged encoder task (App. D.4's rule: the task catalogue's),
    ``None`` for another kind or a task of your own."""
    from ..tasks.data_folder import TASKS

    staged = TASKS.get(task)
    return staged.primary_metric if kind == "encoder" and staged is not None else None
