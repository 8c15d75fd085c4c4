"""Sharded tensors for BAR and SAM: DTensor (FSDP2) detection, this rank's slice, shard groups.

The core's lowest distributed layer (torch only): `lorabar.bar` and `lorabar.sam` use
it to sum squared norms across the ranks that each hold a slice of a factor,
``|x|^2 = sum_r |x_r|^2``; [`lorabar.distributed`][lorabar.distributed] (SAM under DDP) sits above
them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "all_reduce_sum_",
    "all_true",
    "is_dtensor",
    "local_tensor",
    "resolve_group",
    "shard_group",
]


def _dtensor_type() -> type | None:
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # torch built without distributed
        return None
    return DTensor


def is_dtensor(t: Any) -> bool:
    cls = _dtensor_type()
    return cls is not None and isinstance(t, cls)


def local_tensor(t: Tensor) -> Tensor:
    """This rank's slice of ``t``: ``t.to_local()`` for a DTensor (it shares storage), else
    ``t``."""
    return t.to_local() if is_dtensor(t) else t


def shard_group(tensors: Sequence[Tensor]) -> Any:
    """The process group DTensor ``tensors`` are sharded over, or ``None`` if none is a DTensor.

    All DTensors must be sharded over the same one mesh dimension (FSDP2 / HSDP's shard
    dimension); replicated dimensions need no reduction.
    """
    groups = []
    plain = 0
    for t in tensors:
        if not is_dtensor(t):
            plain += 1
            continue
        dims = [i for i, p in enumerate(t.placements) if p.is_shard()]
        if len(dims) > 1:
            raise ValueError(
                f"Invalid factors: a DTensor is sharded over {len(dims)} mesh dimensions "
                f"{t.placements}; BAR supports sharding over one"
            )
        groups.append(t.device_mesh.get_group(dims[0]) if dims else None)
    if not groups:
        return None
    if plain:
        raise ValueError("Invalid factors: some are DTensors and some are not; shard all or none")
    if any(g is not groups[0] for g in groups):
        raise ValueError("Invalid factors: DTensors sharded over different process groups")
    return groups[0]


def resolve_group(tensors: Sequence[Tensor], process_group: Any) -> tuple[bool, Any]:
    """``(sharded, group)`` for BAR/SAM: DTensors carry their group; otherwise the one given."""
    dgroup = shard_group(tensors)
    if dgroup is not None and process_group is not None:
        raise ValueError("Invalid process_group: the tensors are DTensors, which carry their own")
    if dgroup is not None:
        return True, dgroup
    return process_group is not None, process_group


def all_reduce_sum_(t: Tensor, group: Any) -> Tensor:
    import torch.distributed as dist

    dist.all_reduce(t, op=dist.ReduceOp.SUM, group=group)
    return t


def all_true(flag: Tensor, group: Any = None) -> Tensor:
    import torch.distributed as dist

    f = flag.to(torch.float32).reshape(1)
    dist.all_reduce(f, op=dist.ReduceOp.MIN, group=group)
    return f[0] > 0
