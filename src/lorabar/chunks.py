"""A batch split into m chunks along dim 0 (SAM's m-sharpness,
[`lorabar.sam_step()`][lorabar.sam_loop.sam_step]).

A batch is a tensor, or a tuple, list or dict of batches, every tensor with the batch on dim 0;
chunk j of each tensor is ``torch.tensor_split(t, m)[j]`` (sizes differ by at most one).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

__all__ = ["batch_size", "split_batch"]


def _refuse(batch: Any) -> TypeError:
    return TypeError(
        f"Invalid batch: cannot split a {type(batch).__name__} (expected tensors, or "
        "tuples, lists or dicts of tensors, all with the batch on dim 0)"
    )


def split_batch(batch: Any, m: int) -> list[Any]:
    """``batch`` as ``m`` batches of the same structure."""
    if isinstance(batch, Tensor):
        return list(torch.tensor_split(batch, m))
    if isinstance(batch, Mapping):
        parts = {k: split_batch(v, m) for k, v in batch.items()}
        return [
            type(batch)({k: v[i] for k, v in parts.items()})  # type: ignore[call-arg]
            for i in range(m)
        ]
    if isinstance(batch, list | tuple):
        parts = [split_batch(v, m) for v in batch]
        return [type(batch)(v[i] for v in parts) for i in range(m)]
    raise _refuse(batch)


def batch_size(batch: Any) -> int:
    """The size of dim 0 of the batch's first tensor."""
    if isinstance(batch, Tensor):
        return batch.shape[0]
    if isinstance(batch, Mapping) and batch:
        return batch_size(next(iter(batch.values())))
    if isinstance(batch, list | tuple) and batch:
        return batch_size(batch[0])
    raise _refuse(batch)
