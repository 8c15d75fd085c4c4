"""Which executor runs a grid, and with what: ``--executor`` and its flags, checked together."""

from __future__ import annotations

import dataclasses
from pathlib import Path

__all__ = ["EXECUTORS", "ExecutorConfig", "threads_per_run"]

EXECUTORS = ("local", "ray", "slurm")

# the flags only one executor reads: giving them to another is refused, not ignored
ONLY = {
    "address": "ray",
    "retries": "ray",
    "partition": "slurm",
    "time_min": "slurm",
    "slurm_cluster": "slurm",
}
DEFAULTS = {"address": None, "retries": 1, "partition": None, "time_min": 60, "slurm_cluster": None}


@dataclasses.dataclass(frozen=True)
class ExecutorConfig:
    """``executor``: ``local`` (``jobs`` processes here), ``ray`` (``address``: a running
    cluster, else a local instance; ``retries`` for a task whose worker died) or ``slurm``
    (submitit: ``partition``, ``time_min`` per run, ``jobs`` runs at once; ``slurm_cluster``
    ``local`` runs the array on this machine).  ``cpus_per_run`` (0: the run's torch threads) and
    ``gpus_per_run`` are what a remote run asks for."""

    executor: str = "local"
    jobs: int = 1
    address: str | None = None
    cpus_per_run: int = 0
    gpus_per_run: int = 0
    partition: str | None = None
    time_min: int = 60
    slurm_cluster: str | None = None
    retries: int = 1

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise ValueError(
                f"Invalid --executor: {self.executor!r} (expected one of {list(EXECUTORS)})"
            )
        for name, owner in ONLY.items():
            if owner != self.executor and getattr(self, name) != DEFAULTS[name]:
                flag = "--" + name.replace("_", "-")
                raise ValueError(
                    f"Invalid {flag}: only --executor {owner} reads it (this grid "
                    f"runs on --executor {self.executor})"
                )
        if self.executor == "local" and (self.cpus_per_run or self.gpus_per_run):
            raise ValueError(
                "Invalid --cpus-per-run/--gpus-per-run: a local grid gives each run "
                "--threads and the device it resolves; these are for ray and slurm"
            )
        for name in ("jobs", "cpus_per_run", "gpus_per_run", "time_min", "retries"):
            value = getattr(self, name)
            if (
                not isinstance(value, int)
                or isinstance(value, bool)
                or value < 0
                or (name in ("jobs", "time_min") and value < 1)
            ):
                raise ValueError(
                    f"Invalid --{name.replace('_', '-')}: {value!r} (expected a "
                    f"{'positive' if name in ('jobs', 'time_min') else 'non-negative'}"
                    " integer)"
                )

    def build(self, out: str | Path, threads: int, runner=None):
        """The executor for a grid writing to ``out`` whose runs use ``threads`` torch threads."""
        cpus = self.cpus_per_run or threads
        if self.executor == "ray":
            from .ray_executor import RayExecutor

            return RayExecutor(self.address, cpus, self.gpus_per_run, self.retries)
        if self.executor == "slurm":
            from .slurm_executor import SlurmExecutor

            return SlurmExecutor(
                str(Path(out) / "slurm"),
                self.partition,
                self.time_min,
                cpus,
                self.gpus_per_run,
                self.jobs,
                self.slurm_cluster,
            )
        from .local import LocalExecutor

        return LocalExecutor(self.jobs) if runner is None else LocalExecutor(self.jobs, runner)


def threads_per_run(threads: int, jobs: int) -> int:
    """The torch threads each run gets: ``threads``, or 0 for the CPUs split evenly over the
    ``jobs`` runs at once (at least 1).  The one statement of "0 means default" for a grid."""
    import os

    return threads or max(1, (os.cpu_count() or 1) // jobs)
