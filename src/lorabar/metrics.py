"""Balancedness and gradient-gap statistics of factor pairs.

For a pair ``(x, y)`` (paper Sec. 2.2):

```
B        = (|x|^2 - |y|^2) / 2          balancedness; SGD keeps it constant (Thm. 1)
grad_gap = |g_x|^2 - |g_y|^2            drives SAM's dB/dt (Thm. 2, eq. (5))
```

Everything is computed under ``no_grad`` with one multi-tensor norm per device, reduced in at
least float32, and returned as tensors: nothing synchronizes with the host until you call
`Balancedness.as_dict()` (which is meant for logging).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .functional import squared_norms
from .pairs import FactorPair

__all__ = ["Balancedness", "balancedness"]


@dataclass(frozen=True)
class Balancedness:
    """Per-pair statistics; 1-D tensors indexed like ``names``.

    ``grad_x_sq``/``grad_y_sq`` are NaN for a pair whose factor has no gradient.
    """

    names: tuple[str, ...]
    x_sq: Tensor
    y_sq: Tensor
    grad_x_sq: Tensor
    grad_y_sq: Tensor

    @property
    def B(self) -> Tensor:  # noqa: N802 - the paper's symbol
        """``(|x|^2 - |y|^2) / 2`` per pair."""
        return 0.5 * (self.x_sq - self.y_sq)

    @property
    def abs_B(self) -> Tensor:  # noqa: N802
        return self.B.abs()

    @property
    def grad_gap(self) -> Tensor:
        """``|g_x|^2 - |g_y|^2`` per pair (NaN where a gradient is missing)."""
        return self.grad_x_sq - self.grad_y_sq

    @property
    def mean_abs_B(self) -> Tensor:  # noqa: N802
        return self.abs_B.mean()

    @property
    def max_abs_B(self) -> Tensor:  # noqa: N802
        return self.abs_B.max()

    def as_dict(self) -> dict:
        """Plain floats for logging (this synchronizes with the device once)."""
        stacked = torch.stack([self.x_sq, self.y_sq, self.grad_x_sq, self.grad_y_sq]).cpu()
        x_sq, y_sq, gx_sq, gy_sq = (row.tolist() for row in stacked)

        def clean(v: float) -> float | None:
            return None if math.isnan(v) else v

        per_pair = [
            {
                "name": name,
                "x_sq": xs,
                "y_sq": ys,
                "B": 0.5 * (xs - ys),
                "grad_x_sq": clean(gx),
                "grad_y_sq": clean(gy),
                "grad_gap": clean(gx - gy),
            }
            for name, xs, ys, gx, gy in zip(self.names, x_sq, y_sq, gx_sq, gy_sq, strict=True)
        ]
        abs_b = [abs(p["B"]) for p in per_pair]
        return {
            "mean_abs_B": sum(abs_b) / len(abs_b),
            "max_abs_B": max(abs_b),
            "pairs": per_pair,
        }


@torch.no_grad()
def balancedness(pairs: Sequence[FactorPair], *, foreach: bool | None = None) -> Balancedness:
    """Compute `Balancedness` for ``pairs`` (all on one device)."""
    pairs = list(pairs)
    if not pairs:
        raise ValueError("Invalid pairs: empty (expected at least one FactorPair)")
    devices = {p.x.device for p in pairs}
    if len(devices) > 1:
        raise ValueError(f"Invalid pairs: spread over devices {sorted(map(str, devices))}")
    n = len(pairs)
    tensors = [p.x for p in pairs] + [p.y for p in pairs]
    has_grad = [p.x.grad is not None and p.y.grad is not None for p in pairs]
    grads = [p.x.grad for p, h in zip(pairs, has_grad) if h] + [
        p.y.grad for p, h in zip(pairs, has_grad) if h
    ]
    sq = squared_norms(tensors + grads, foreach=foreach)
    x_sq, y_sq = sq[:n], sq[n : 2 * n]
    gx_sq = torch.full_like(x_sq, float("nan"))
    gy_sq = torch.full_like(x_sq, float("nan"))
    m = sum(has_grad)
    if m:
        idx = torch.tensor([i for i, h in enumerate(has_grad) if h], device=x_sq.device)
        gx_sq[idx] = sq[2 * n : 2 * n + m]
        gy_sq[idx] = sq[2 * n + m :]
    return Balancedness(
        names=tuple(p.name for p in pairs), x_sq=x_sq, y_sq=y_sq, grad_x_sq=gx_sq, grad_y_sq=gy_sq
    )
