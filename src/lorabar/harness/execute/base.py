"""What every executor gets and returns: the runs still to do, and one call per run that ended.

An executor runs `RunJob` s -- a config, the identity it must produce and the result file
it writes -- wherever it runs them (this process, a process pool, Ray tasks, SLURM jobs) and calls
``finished(job, error)`` once per run that ended (``error`` is ``None`` for a success); when that
call returns ``True`` the grid is stopping (a full disk) and no further run may start.  A run is
idempotent by identity: the worker writes ``job.path`` atomically only if the run it made has
``job.identity`` (`lorabar.harness.run.engine.run_to_file()`), so a retried or repeated run
never leaves two results.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Callable, Protocol

__all__ = ["Executor", "Finished", "RunJob", "run_in_folder"]


@dataclasses.dataclass(frozen=True)
class RunJob:
    """One run to do: its config, the identity the grid computed for it, its result file."""

    cfg: object
    identity: dict
    path: Path


Finished = Callable[[RunJob, "BaseException | None"], bool]


class Executor(Protocol):
    """Where the runs of a grid run (see the module docstring)."""

    name: str

    def describe(self) -> str:
        """One line for the grid's plan: where and how many at once."""

    def run(self, jobs: list[RunJob], finished: Finished) -> None:
        """Run ``jobs``, calling ``finished`` once per run that ended."""


def run_in_folder(cfg, path: str, identity: dict, cwd: str) -> str:
    """A run on another process or machine: in the submitting folder ``cwd`` (a shared file
    system; relative data and model paths mean what they meant there), writing ``path``."""
    from ..run.engine import run_to_file

    os.chdir(cwd)
    return run_to_file(cfg, path, expect=identity)
