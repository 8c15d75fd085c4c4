"""Running the harness under ``torchrun`` / ``accelerate launch`` (data-parallel).

The launchers set ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE`` and ``MASTER_ADDR``/``MASTER_PORT``;
`init_from_env()` starts the process group from them: NCCL when the run trains on CUDA (one
GPU per rank, ``cuda:LOCAL_RANK``), gloo on the CPU.  Each rank takes every ``world``-th example of
the global batch (``batch_size`` stays the
global batch, so a run is comparable to the single-process one), DDP averages the gradients,
rank 0 evaluates and writes the result.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int | None = None
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def local_rank() -> int | None:
    """``LOCAL_RANK`` when launched with several processes, else ``None``."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    return int(os.environ.get("LOCAL_RANK", "0"))


def init_from_env(device_type: str = "cpu") -> Dist:
    """The process's rank and world size; when ``WORLD_SIZE > 1`` starts the process group
    (NCCL for ``device_type == "cuda"``, gloo otherwise)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    backend = "nccl" if device_type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return Dist(dist.get_rank(), dist.get_world_size(), local_rank(), dist.get_backend())


def barrier(d: Dist) -> None:
    if d.enabled:
        import torch.distributed as dist

        dist.barrier()


def shard(items: list, d: Dist) -> list:
    """This rank's share of one global batch (every ``world``-th item from ``rank``)."""
    if len(items) % d.world:
        raise ValueError(
            f"Invalid batch_size: {len(items)} is not divisible by the world size {d.world}"
        )
    return items[d.rank :: d.world]
