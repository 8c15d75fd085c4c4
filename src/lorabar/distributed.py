"""BAR and SAM under ``torch.distributed``: sharded factors (FSDP, DTensor) and SAM under DDP.

**DDP** needs nothing from BAR: DDP all-reduces (averages) the gradients during ``backward`` and
the replicas start equal, so at ``optimizer.step()`` every rank holds the same factors and the
same gradients and takes the same per-pair decisions.  With gradient accumulation under
``model.no_sync()`` the optimizer (and so BAR) only steps after the synchronized micro-batch.
``tests/test_distributed.py`` checks both, and that parameters stay bit-identical across ranks.

**Sharded factors** (FSDP ``use_orig_params=True``, FSDP2 ``fully_shard``): every rank holds a
slice of each factor and of its gradient, so a norm is a sum of per-rank contributions::

    |x|^2 = sum_r |x_r|^2

BAR sums the local squared norms across the shard group (one ``all_reduce`` of a ``3n`` vector
per step: the ``2n`` squared norms and ``n`` has-gradient counts, so a pair whose shard is empty
on one rank -- FSDP sets no ``.grad`` there -- is still treated alike everywhere) and then rescales
each local slice.  Pass the group as ``BAR(..., process_group=...)`` for FSDP1 (its
``model.process_group``); DTensor factors (FSDP2) are recognized and reduced over their mesh.

**SAM under DDP**: :func:`ddp_sam_step` with ``perturbation="sync"`` (the first backward
all-reduces: ``e`` comes from the global-batch gradient, true SAM over the global batch) or
``"per_rank"`` (the first backward runs under ``no_sync``: each rank perturbs with its own
gradient, which is m-sharpness with ``m`` = world size -- paper App. C.3, Foret et al. 2021).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

import torch
from torch import Tensor

__all__ = ["PERTURBATIONS", "ddp_sam_step", "is_dtensor", "local_tensor", "resolve_group",
           "shard_group"]

PERTURBATIONS = ("sync", "per_rank")


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
    """This rank's slice of ``t``: ``t.to_local()`` for a DTensor (it shares storage), else ``t``."""
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


def _all_true(flag: Tensor, group: Any = None) -> Tensor:
    import torch.distributed as dist

    f = flag.to(torch.float32).reshape(1)
    dist.all_reduce(f, op=dist.ReduceOp.MIN, group=group)
    return f[0] > 0


def ddp_sam_step(
    model: torch.nn.Module,
    optimizer: Any,
    loss_fn: Callable[[Any], Tensor],
    micro_batches: Sequence[Any],
    *,
    perturbation: str = "sync",
    scaler: Any = None,
) -> Tensor:
    """One SAM step of a DDP ``model`` over this rank's ``micro_batches`` (gradient accumulation).

    ``optimizer`` is a :class:`lorabar.SAM` over ``model``'s parameters; ``loss_fn(mb)`` returns
    the mean loss of one micro-batch (wrap it in ``torch.autocast`` for mixed precision).  The
    loss is averaged over the micro-batches and, by DDP, over ranks.  Only the last backward of
    each pass all-reduces (the others run under ``model.no_sync()``), except that with
    ``perturbation="per_rank"`` the first pass never does:

    * ``"sync"``: ``e = rho g / |g|`` with ``g`` the global-batch gradient -- SAM on the global
      batch, identical to one process running the whole batch.
    * ``"per_rank"``: ``e_r = rho g_r / |g_r|`` from rank ``r``'s own batch; the base step uses the
      average over ranks of ``grad L_r(w + e_r)`` -- m-sharpness with ``m`` = world size
      (:func:`lorabar.sam_step` with ``m`` chunks in one process).  It saves one all-reduce.

    With ``scaler`` (fp16) an inf/NaN on any rank in either pass skips the step on every rank.
    Returns this rank's mean first-pass loss (detached).
    """
    from .sam import SAM

    if perturbation not in PERTURBATIONS:
        raise ValueError(f"Invalid perturbation: {perturbation!r} (expected one of {PERTURBATIONS})")
    if not isinstance(optimizer, SAM):
        raise TypeError(f"Invalid optimizer: expected lorabar.SAM, got {type(optimizer).__name__}")
    if not hasattr(model, "no_sync"):
        raise TypeError(
            f"Invalid model: a {type(model).__name__} has no no_sync(); pass the "
            "DistributedDataParallel-wrapped model"
        )
    if len(micro_batches) == 0:
        raise ValueError("Invalid micro_batches: empty")
    k = len(micro_batches)

    def run_pass(sync_last: bool) -> Tensor:
        total = None
        for i, mb in enumerate(micro_batches):
            ctx = nullcontext() if (sync_last and i == k - 1) else model.no_sync()
            with ctx, torch.enable_grad():
                loss = loss_fn(mb) / k
                (scaler.scale(loss) if scaler is not None else loss).backward()
            total = loss.detach() if total is None else total + loss.detach()
        assert total is not None
        return total

    optimizer.zero_grad()
    loss = run_pass(sync_last=perturbation == "sync")
    optimizer.first_step(zero_grad=True)
    if perturbation == "per_rank" and scaler is not None and optimizer._first_finite is not None:
        # Each rank checked only its own first-pass gradient: agree, or ranks would diverge.
        optimizer._first_finite = _all_true(optimizer._first_finite)
    run_pass(sync_last=True)
    optimizer.second_step(zero_grad=True, scaler=scaler)
    return loss
