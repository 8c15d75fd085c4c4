"""BAR and SAM under ``torch.distributed``: sharded factors (FSDP, DTensor) and SAM under DDP.

**DDP** needs nothing from BAR: DDP all-reduces (averages) the gradients during ``backward`` and
the replicas start equal, so at ``optimizer.step()`` every rank holds the same factors and the
same gradients and takes the same per-pair decisions.  With gradient accumulation under
``model.no_sync()`` the optimizer (and so BAR) only steps after the synchronized micro-batch.
``tests/test_distributed.py`` checks both, and that parameters stay bit-identical across ranks.

**Sharded factors** (FSDP ``use_orig_params=True``, FSDP2 ``fully_shard``): every rank holds a
slice of each factor and of its gradient, so a norm is a sum of per-rank contributions:

```
|x|^2 = sum_r |x_r|^2
```

BAR sums the local squared norms across the shard group (one ``all_reduce`` per step of the
``2n`` squared gradient norms, for oBAR ``2n`` squared factor norms, and ``n`` has-gradient
counts, so a pair whose shard is empty on one rank -- FSDP sets no ``.grad`` there -- is still
treated alike everywhere, and an inf/NaN on any rank leaves the pair alone on every rank) and then
rescales
each local slice.  Pass the group as ``BAR(..., process_group=...)`` for FSDP1 (its
``model.process_group``); DTensor factors (FSDP2) are recognized and reduced over their mesh.

**SAM under DDP**: `ddp_sam_step()` with ``perturbation="sync"`` (the first backward
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

from . import _names
from ._shard import all_reduce_sum_, all_true, is_dtensor, local_tensor, resolve_group, shard_group
from .sam import SAM
from .sam_loop import scaled_backward

__all__ = [
    "PERTURBATIONS",
    "all_reduce_sum_",
    "ddp_sam_step",
    "is_dtensor",
    "local_tensor",
    "resolve_group",
    "shard_group",
]

PERTURBATIONS = _names.PERTURBATIONS


def _check_step_args(model, optimizer, micro_batches, perturbation: str) -> None:
    if perturbation not in PERTURBATIONS:
        raise ValueError(
            f"Invalid perturbation: {perturbation!r} (expected one of {PERTURBATIONS})"
        )
    if not isinstance(optimizer, SAM):
        raise TypeError(f"Invalid optimizer: expected lorabar.SAM, got {type(optimizer).__name__}")
    if not hasattr(model, "no_sync"):
        raise TypeError(
            f"Invalid model: a {type(model).__name__} has no no_sync(); pass the "
            "DistributedDataParallel-wrapped model"
        )
    if len(micro_batches) == 0:
        raise ValueError("Invalid micro_batches: empty")


def ddp_sam_step(
    model: torch.nn.Module,
    optimizer: Any,
    loss_fn: Callable[[Any], Tensor],
    micro_batches: Sequence[Any],
    *,
    perturbation: str = "sync",
    scaler: Any = None,
    after_first_backward: Callable[[], None] | None = None,
) -> Tensor:
    """One SAM step of a DDP ``model`` over this rank's ``micro_batches`` (gradient accumulation).

    ``optimizer`` is a [`lorabar.SAM`][lorabar.sam.SAM] over ``model``'s parameters; ``loss_fn(mb)``
    returns
    the mean loss of one micro-batch (wrap it in ``torch.autocast`` for mixed precision).  The
    loss is averaged over the micro-batches and, by DDP, over ranks.  Only the last backward of
    each pass all-reduces (the others run under ``model.no_sync()``), except that with
    ``perturbation="per_rank"`` the first pass never does:

    * ``"sync"``: ``e = rho g / |g|`` with ``g`` the global-batch gradient -- SAM on the global
      batch, identical to one process running the whole batch.
    * ``"per_rank"``: ``e_r = rho g_r / |g_r|`` from rank ``r``'s own batch; the base step uses the
      average over ranks of ``grad L_r(w + e_r)`` -- m-sharpness with ``m`` = world size
      ([`lorabar.sam_step()`][lorabar.sam_loop.sam_step] with ``m`` chunks in one process).  It
      saves one all-reduce.

    With ``scaler`` (fp16) an inf/NaN on any rank in either pass skips the step on every rank.
    ``after_first_backward()`` runs after the first pass (for logging, as in
    [`lorabar.sam_step()`][lorabar.sam_loop.sam_step]).  Returns this rank's mean first-pass loss
    (detached).
    """
    _check_step_args(model, optimizer, micro_batches, perturbation)
    k = len(micro_batches)

    def run_pass(sync_last: bool) -> Tensor:
        total = None
        for i, mb in enumerate(micro_batches):
            ctx = nullcontext() if (sync_last and i == k - 1) else model.no_sync()
            with ctx, torch.enable_grad():
                loss = loss_fn(mb) / k
                scaled_backward(loss, scaler)
            total = loss.detach() if total is None else total + loss.detach()
        assert total is not None
        return total

    optimizer.zero_grad()
    loss = run_pass(sync_last=perturbation == "sync")
    if after_first_backward is not None:
        after_first_backward()
    optimizer.first_step(zero_grad=True)
    if (
        perturbation == "per_rank"
        and scaler is not None
        and optimizer.first_pass_finite is not None
    ):
        # Each rank checked only its own first-pass gradient: agree, or ranks would diverge.
        optimizer.first_pass_finite = all_true(optimizer.first_pass_finite)
    run_pass(sync_last=True)
    optimizer.second_step(zero_grad=True, scaler=scaler)
    return loss
