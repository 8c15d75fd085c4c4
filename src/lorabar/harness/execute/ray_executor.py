"""``--executor ray``: each run a Ray task with its CPU and GPU resources.

``address``: a running Ray cluster (``ray start --head`` on the cluster, then ``--address auto``
or ``ray://host:10001``); ``None`` starts a local Ray instance for this grid and stops it at the
end.  Every task asks for ``cpus_per_run`` CPUs (default: the run's torch threads) and
``gpus_per_run`` GPUs, so Ray places as many runs at once as the cluster holds.  Results land in
the grid's ``--out``, which every node must see at the same path (a shared file system); a task
whose worker dies is retried up to ``retries`` times (Ray's ``max_retries``), a run that raises is
reported, and the identity check in the worker keeps a retried run from leaving a second result.
Reference: Moritz et al., "Ray: A Distributed Framework for Emerging AI Applications", OSDI 2018;
https://docs.ray.io/en/latest/ray-core/tasks.html
"""

from __future__ import annotations

import dataclasses
import os

from .base import Finished, RunJob, run_in_folder

__all__ = ["RayExecutor"]

LOCAL_OBJECT_STORE = 200 * 1024**2  # a local instance only passes configs and paths


@dataclasses.dataclass
class RayExecutor:
    """Runs as Ray tasks (see the module docstring)."""

    address: str | None = None
    cpus_per_run: float = 1.0
    gpus_per_run: float = 0.0
    retries: int = 1
    local_cpus: int | None = None
    name: str = "ray"

    def __post_init__(self) -> None:
        if not self.cpus_per_run > 0 or self.gpus_per_run < 0:
            raise ValueError(
                f"Invalid --cpus-per-run/--gpus-per-run: {self.cpus_per_run}/"
                f"{self.gpus_per_run} (expected CPUs > 0 and GPUs >= 0)"
            )
        if not isinstance(self.retries, int) or self.retries < 0:
            raise ValueError(f"Invalid --retries: {self.retries} (expected an integer >= 0)")

    def describe(self) -> str:
        where = f"the Ray cluster at {self.address}" if self.address else "a local Ray instance"
        return (
            f"Ray tasks on {where}, {self.cpus_per_run:g} CPU and {self.gpus_per_run:g} GPU per run"
        )

    def _start(self) -> bool:
        """Connect to (or start) Ray; whether this grid started it (and so stops it)."""
        import logging

        import ray

        if ray.is_initialized():
            return False
        if self.address:
            ray.init(address=self.address, logging_level=logging.WARNING, log_to_driver=False)
        else:
            ray.init(
                num_cpus=self.local_cpus or os.cpu_count(),
                include_dashboard=False,
                object_store_memory=LOCAL_OBJECT_STORE,
                logging_level=logging.WARNING,
                log_to_driver=False,
            )
        return True

    def run(self, jobs: list[RunJob], finished: Finished) -> None:
        if not jobs:
            return
        try:
            import ray
        except ImportError:
            raise ValueError(
                "Invalid --executor ray: Ray is not installed here (pip install 'lorabar[cluster]')"
            ) from None
        started = self._start()
        task = ray.remote(
            num_cpus=self.cpus_per_run, num_gpus=self.gpus_per_run, max_retries=self.retries
        )(run_in_folder)
        cwd = os.getcwd()
        refs = {task.remote(j.cfg, str(j.path.resolve()), j.identity, cwd): j for j in jobs}
        pending = list(refs)
        try:
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                try:
                    ray.get(ready[0])
                    error = None
                except ray.exceptions.RayTaskError as err:
                    error = err.cause if isinstance(err.cause, BaseException) else err
                except ray.exceptions.RayError as err:  # the worker died past its retries
                    error = err
                if finished(refs[ready[0]], error):
                    break
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
            if started:
                ray.shutdown()
