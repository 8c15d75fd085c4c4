"""``--executor local`` (the default): runs in this process (``--jobs 1``) or in a pool of
spawned worker processes on this machine, which die with the grid (Ctrl-C, SIGKILL)."""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ProcessPoolExecutor, as_completed

from .base import Finished, RunJob

__all__ = ["LocalExecutor", "die_with_parent", "run_one"]


def run_one(cfg, path: str, expect: dict | None = None, parent: int | None = None) -> str:
    """The worker's job: one run written to ``path`` (`
    run_to_file()`; nothing is written if the grid ``parent`` is gone when it ends)."""
    from ..run.engine import run_to_file

    return run_to_file(cfg, path, expect=expect, parent=parent)


def die_with_parent(parent: int) -> None:
    """Worker initializer: the worker is killed when the grid process dies (SIGKILL included;
    Linux's parent-death signal), and exits at once if the grid is already gone."""
    import signal

    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: run_to_file's parent check still applies
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the grid's to handle
    if os.getppid() != parent:
        os._exit(1)


@dataclasses.dataclass
class LocalExecutor:
    """``jobs`` runs at once on this machine; ``runner(cfg, path, identity, parent)`` does one
    (tests give a stand-in)."""

    jobs: int = 1
    runner: object = run_one
    name: str = "local"

    def __post_init__(self) -> None:
        if not isinstance(self.jobs, int) or self.jobs < 1:
            raise ValueError(f"Invalid --jobs: {self.jobs} (expected a positive integer)")

    def describe(self) -> str:
        return f"{self.jobs} job{'s' if self.jobs > 1 else ''}"

    def run(self, jobs: list[RunJob], finished: Finished) -> None:
        if self.jobs <= 1:
            for job in jobs:
                try:
                    self.runner(job.cfg, str(job.path), job.identity, None)  # no parent check
                    stop = finished(job, None)
                except Exception as err:  # noqa: BLE001 - one failed run must not stop the grid
                    stop = finished(job, err)
                if stop:
                    return
            return
        self._run_pool(jobs, finished)

    def _run_pool(self, jobs: list[RunJob], finished: Finished) -> None:
        import multiprocessing

        # workers killed with the grid leave the pool's semaphores to multiprocessing's resource
        # tracker, which would print a UserWarning after the grid's own one-line message
        quiet = "ignore:resource_tracker:UserWarning"
        if quiet not in os.environ.get("PYTHONWARNINGS", ""):
            os.environ["PYTHONWARNINGS"] = ",".join(
                filter(None, (os.environ.get("PYTHONWARNINGS"), quiet))
            )
        parent = os.getpid()
        pool = ProcessPoolExecutor(
            self.jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=die_with_parent,
            initargs=(parent,),
        )
        try:
            futures = {
                pool.submit(self.runner, j.cfg, str(j.path), j.identity, parent): j for j in jobs
            }
            for fut in as_completed(futures):
                if fut.cancelled():
                    continue
                if finished(futures[fut], fut.exception()):
                    for other in futures:
                        other.cancel()
        except BaseException:
            kill_workers(pool)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def kill_workers(pool: ProcessPoolExecutor) -> None:
    """Stop a pool's workers now (Ctrl-C, SIGTERM): no run finishes after the grid stopped."""
    for proc in list(getattr(pool, "_processes", {}).values()):
        try:
            proc.kill()
        except (OSError, ValueError):
            pass
