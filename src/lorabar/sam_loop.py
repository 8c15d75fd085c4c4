"""One whole SAM step from a loss function and a batch (`sam_step()`): both passes, the
weights restored whatever happens at ``w + e``, a ``GradScaler``, and m-sharpness (paper eq.
(38)) over chunks of the batch; `scaled_backward()`, the backward pass with or without a
scaler.  The optimizer itself is `lorabar.sam.SAM`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from . import _validate as _v
from .chunks import batch_size, split_batch
from .sam import SAM

__all__ = ["sam_step", "scaled_backward"]


def scaled_backward(loss: Tensor, scaler: Any = None) -> None:
    """``loss.backward()``, through ``scaler.scale(loss)`` when a ``GradScaler`` is given."""
    (scaler.scale(loss) if scaler is not None else loss).backward()


def _loss_of(loss_fn: Callable[[Any], Tensor], chunk: Any) -> Tensor:
    """``loss_fn(chunk)``, which must be a scalar tensor that has a gradient."""
    loss = loss_fn(chunk)
    if not isinstance(loss, Tensor) or loss.numel() != 1 or not loss.requires_grad:
        what = f"{type(loss).__name__} {loss!r}"
        if isinstance(loss, Tensor):
            what = f"a tensor of shape {tuple(loss.shape)}" + (
                "" if loss.requires_grad else " without a gradient"
            )
        raise TypeError(
            f"Invalid loss_fn: it returned {what}; sam_step needs the chunk's mean "
            "loss as a scalar tensor that requires grad (return loss, not "
            "loss.item())"
        )
    return loss


@torch.no_grad()
def _accumulate_(acc: dict[Tensor, Tensor], optimizer: SAM, w: float) -> None:
    """``acc[p] += w * p.grad`` for every parameter with a gradient (m-sharpness's mean)."""
    for p in (p for g in optimizer.param_groups for p in g["params"] if p.grad is not None):
        if p in acc:
            acc[p].add_(p.grad, alpha=w)
        else:
            acc[p] = p.grad.mul(w) if w != 1.0 else p.grad.clone()


def sam_step(
    optimizer: SAM,
    loss_fn: Callable[[Any], Tensor],
    batch: Any,
    *,
    m: int = 1,
    scaler: Any = None,
    after_first_backward: Callable[[], None] | None = None,
) -> Tensor:
    """One whole SAM step from a loss function and a batch, with m-sharpness.

    The batch is split into ``m`` chunks along dim 0; for each chunk ``j`` the gradient is taken at
    ``w + e_j``, ``e_j = rho g_j / |g_j|`` from that chunk alone, and the base step uses the
    chunk-size-weighted mean of these gradients (paper eq. (38)).  ``m = 1`` is plain SAM.
    ``loss_fn(chunk)`` returns the mean loss of the chunk (wrap it in ``torch.autocast`` for
    mixed precision); pass ``scaler`` for fp16.  Gradients are zeroed before and after.
    ``after_first_backward()``, if given, runs after each chunk's first backward pass, while
    ``.grad`` holds that chunk's gradient at ``w`` (loss-scaled under ``scaler``): for logging.
    Returns the mean first-pass loss (a detached tensor).
    """
    if not isinstance(optimizer, SAM):
        raise TypeError(f"Invalid optimizer: expected lorabar.SAM, got {type(optimizer).__name__}")
    _v.integer("m", m, 1)
    size = batch_size(batch)
    if size < m:
        raise ValueError(f"Invalid m: {m} (larger than the batch size {size})")
    chunks = split_batch(batch, m)
    weights = [batch_size(c) / size for c in chunks]

    optimizer.zero_grad()
    acc: dict[Tensor, Tensor] = {}
    finite: Tensor | None = None
    total = None
    for chunk, w in zip(chunks, weights, strict=True):
        with torch.enable_grad():
            loss = _loss_of(loss_fn, chunk)
            scaled_backward(loss, scaler)
        if after_first_backward is not None:
            after_first_backward()
        optimizer.first_step(zero_grad=True)
        if optimizer.first_pass_finite is not None:
            mine = optimizer.first_pass_finite
            finite = mine if finite is None else finite & mine
        try:  # at w + e: whatever goes wrong, the weights go back to w
            with torch.enable_grad():
                scaled_backward(_loss_of(loss_fn, chunk), scaler)
        finally:
            optimizer.unperturb()
        _accumulate_(acc, optimizer, w)
        optimizer.zero_grad()
        total = loss.detach() * w if total is None else total + loss.detach() * w
    for p, g in acc.items():
        p.grad = g
    optimizer.first_pass_finite = finite
    optimizer.base_step(scaler)
    optimizer.zero_grad()
    assert total is not None
    return total
