"""``--executor slurm``: the runs as one SLURM job array through submitit.

Every run is one array task asking for ``cpus_per_run`` CPUs, ``gpus_per_run`` GPUs and
``time_min`` minutes on ``partition``; at most ``parallel`` run at once (SLURM's array
throttle).  submitit's job files and logs go to ``log_folder`` (default ``OUT/slurm``).  Results
land in the grid's ``--out``, which the nodes see at the same path (a shared file system); a
failed task is reported with its log's error, and the worker's identity check keeps a requeued
task from leaving a second result.  ``cluster="local"`` runs the same array as processes on this
machine (submitit's ``LocalExecutor``, ``parallel`` at a time), which is how CI tests this path.
Reference: https://github.com/facebookincubator/submitit (docs/examples.md, job arrays).
"""

from __future__ import annotations

import dataclasses
import os

from .base import Finished, RunJob, run_in_folder

__all__ = ["SlurmExecutor"]

POLL_S = 2.0  # how often SLURM is asked which tasks ended
LOCAL_POLL_S = 0.25  # the local executor's tasks are processes here: asking costs nothing


@dataclasses.dataclass
class SlurmExecutor:
    """Runs as a submitit job array (see the module docstring)."""

    log_folder: str
    partition: str | None = None
    time_min: int = 60
    cpus_per_run: int = 1
    gpus_per_run: int = 0
    parallel: int = 64
    cluster: str | None = None  # None: SLURM (submitit's auto-detection); "local": this machine
    name: str = "slurm"

    def __post_init__(self) -> None:
        for field, value, low in (
            ("--time-min", self.time_min, 1),
            ("--cpus-per-run", self.cpus_per_run, 1),
            ("--gpus-per-run", self.gpus_per_run, 0),
            ("--jobs", self.parallel, 1),
        ):
            if not isinstance(value, int) or value < low:
                raise ValueError(f"Invalid {field}: {value} (expected an integer >= {low})")
        if self.cluster not in (None, "slurm", "local"):
            raise ValueError(f"Invalid --slurm-cluster: {self.cluster!r} (expected slurm or local)")

    def describe(self) -> str:
        where = (
            f"this machine (submitit local, {self.parallel} at once)"
            if self.cluster == "local"
            else f"SLURM partition {self.partition or '(default)'}"
        )
        return (
            f"a submitit job array on {where}, {self.cpus_per_run} CPU, {self.gpus_per_run} "
            f"GPU, {self.time_min} min per run"
        )

    def _executor(self):
        try:
            import submitit
        except ImportError:
            raise ValueError(
                "Invalid --executor slurm: submitit is not installed here (pip "
                "install 'lorabar[cluster]')"
            ) from None
        ex = submitit.AutoExecutor(folder=self.log_folder, cluster=self.cluster)
        params = {
            "timeout_min": self.time_min,
            "cpus_per_task": self.cpus_per_run,
            "gpus_per_node": self.gpus_per_run,
            "name": "lorabar",
            "slurm_array_parallelism": self.parallel,
        }
        if self.partition:
            params["slurm_partition"] = self.partition
        ex.update_parameters(**params)
        return ex

    def run(self, jobs: list[RunJob], finished: Finished) -> None:
        if not jobs:
            return
        # SLURM throttles an array itself (slurm_array_parallelism); submitit's local executor
        # starts every task at once, so here the array goes in waves of ``parallel``
        wave = self.parallel if self.cluster == "local" else len(jobs)
        executor = self._executor()
        for start in range(0, len(jobs), wave):
            if self._run_array(executor, jobs[start : start + wave], finished):
                return

    def _run_array(self, executor, jobs: list[RunJob], finished: Finished) -> bool:
        """Submit ``jobs`` as one array and report each as it ends; whether the grid stops."""
        from submitit.helpers import as_completed

        cwd = os.getcwd()
        array = executor.map_array(
            run_in_folder,
            [j.cfg for j in jobs],
            [str(j.path.resolve()) for j in jobs],
            [j.identity for j in jobs],
            [cwd] * len(jobs),
        )
        which = {id(task): job for task, job in zip(array, jobs)}
        try:
            poll = LOCAL_POLL_S if self.cluster == "local" else POLL_S
            for task in as_completed(array, poll_frequency=poll):
                if finished(which[id(task)], task.exception()):
                    return True
        finally:
            for task in array:
                if not task.done():
                    task.cancel(check=False)
        return False
