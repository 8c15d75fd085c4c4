"""Functional kernels: squared norms of many tensors and the in-place BAR update.

BAR (paper Algs. 2 and 3), for pairs ``(x_i, y_i)`` and coefficients ``c_i = alpha_t * eta_i``:

```
nBAR:  s_i = +1 if |g_x_i| >= |g_y_i| else -1     (follow SAM's drift, Thm. 2)
oBAR:  s_i = -1 if |x_i|   >= |y_i|   else +1     (shrink the larger factor, Thm. 3)
       x_i <- (1 + c_i s_i) x_i,   y_i <- (1 - c_i s_i) y_i
```

sBAR (SAM-matched BAR, lorabar's extension; `sbar_coefficients()`), with ``eta_i`` the lr:

```
c_i = clamp(eta_i rho (|g_x_i|^2 - |g_y_i|^2) / (|g| (|x_i|^2 + |y_i|^2)), -1/2, 1/2)
      x_i <- (1 + c_i) x_i,   y_i <- (1 - c_i) y_i
```

where ``|g|`` is the pair's own gradient norm ``sqrt(|g_x_i|^2 + |g_y_i|^2)`` (default) or the
norm over all pairs.  To first order the step changes ``B_i = (|x_i|^2 - |y_i|^2) / 2`` by
``c_i (|x_i|^2 + |y_i|^2) = eta_i rho (|g_x_i|^2 - |g_y_i|^2) / |g|``: exactly SAM's drift
``dB/dt`` of the paper's Theorem 2 (eq. 5), without the second gradient pass.

The sign is computed on the device with ``torch.where`` (no device-to-host synchronization) and
the norms are reduced in at least float32 whatever the parameters' dtype.  Like
``torch.optim``'s kernels there are two paths: a multi-tensor one built on ``torch._foreach_*``
(a constant number of kernel launches for any number of pairs) and a plain per-pair loop; the
keyword ``foreach: bool | None`` picks one (``None``: foreach whenever the tensors are on an
accelerator or there is more than one pair).  Both give the same result.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from . import _names

__all__ = [
    "FactorBuffer",
    "bar_factors",
    "bar_signs",
    "compute_dtype",
    "keep_nonfinite_",
    "norms",
    "sbar_coefficients",
    "scale_",
    "squared_norms",
    "use_foreach",
]

MODES = _names.BAR_MODES
SIGN_MODES = ("nbar", "obar")  # the modes with a fixed-size, sign-chosen rescaling
SBAR_NORMS = _names.SBAR_NORMS
SBAR_CLAMP = 0.5


class FactorBuffer:
    """A reusable 1-D buffer of ``2n`` scale factors and its 0-dim views.

    ``torch._foreach_mul_`` takes one scalar tensor per tensor; unbinding a fresh factor vector on
    every step costs more than the multiply itself for small LoRA factors, so callers that apply
    BAR repeatedly to the same ``n`` pairs keep one of these and pass it as ``buffer``.
    """

    def __init__(self, n: int, dtype: torch.dtype, device: torch.device | str) -> None:
        self.flat = torch.empty(2 * n, dtype=dtype, device=device)
        self.views = list(self.flat.unbind())


def compute_dtype(tensors: Sequence[Tensor]) -> torch.dtype:
    """The dtype reductions run in: float64 if any tensor is float64, else float32."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def use_foreach(tensors: Sequence[Tensor], foreach: bool | None) -> bool:
    """``foreach`` if given, else the multi-tensor path for more than two tensors or any on an
    accelerator."""
    if foreach is not None:
        return foreach
    return len(tensors) > 2 or any(t.device.type != "cpu" for t in tensors)


def norms(tensors: Sequence[Tensor], dtype: torch.dtype, foreach: bool) -> Tensor:
    """``[|t| for t in tensors]`` in ``dtype``: one multi-tensor kernel (``foreach``), or a
    loop (equal)."""
    if foreach:
        return torch.stack(torch._foreach_norm(list(tensors), 2, dtype=dtype))
    return torch.stack([torch.linalg.vector_norm(t, 2, dtype=dtype) for t in tensors])


def squared_norms(
    tensors: Sequence[Tensor], *, dtype: torch.dtype | None = None, foreach: bool | None = None
) -> Tensor:
    """Return ``[|t|^2 for t in tensors]`` as one 1-D tensor (no host synchronization).

    All tensors must be on one device.  ``dtype`` defaults to `compute_dtype()`.
    """
    if len(tensors) == 0:
        return torch.zeros(0, dtype=dtype or torch.float32)
    dtype = dtype or compute_dtype(tensors)
    return norms(tensors, dtype, use_foreach(tensors, foreach)).square()


def bar_signs(norms: Tensor, mode: str) -> Tensor:
    """Which factor grows: a bool mask over ``[*xs, *ys]`` (length ``2n``) from the ``2n`` norms.

    ``norms`` holds ``|l_1| .. |l_n|, |r_1| .. |r_n|`` (``l, r`` = ``g_x, g_y`` for nBAR, ``x, y``
    for
    oBAR); squared norms give the same mask (the comparison is monotone), which is what sharded
    callers have after summing shard contributions across ranks.
    """
    if mode not in SIGN_MODES:
        raise ValueError(f"Invalid mode: {mode!r} (expected one of {SIGN_MODES})")
    n = norms.shape[0] // 2
    # nBAR grows x when |g_x| >= |g_y|; oBAR grows x when |x| < |y| (it shrinks the larger one).
    grow_x = norms[:n] >= norms[n:] if mode == "nbar" else norms[:n] < norms[n:]
    return torch.cat((grow_x, ~grow_x))  # factors of xs, then of ys


def bar_factors(grow: Tensor, coeffs: float | Tensor, dtype: torch.dtype) -> Tensor:
    """``1 + c`` where ``grow`` else ``1 - c``, in ``dtype``; ``coeffs``: a float or ``n``
    values."""
    if isinstance(coeffs, Tensor):
        c = torch.cat((coeffs, coeffs)).to(device=grow.device, dtype=dtype)
        return 1.0 + torch.where(grow, c, -c)
    up = torch.full((), 1.0 + coeffs, dtype=dtype, device=grow.device)  # rounded once, from float64
    down = torch.full((), 1.0 - coeffs, dtype=dtype, device=grow.device)
    return torch.where(grow, up, down)


def scale_(
    tensors: Sequence[Tensor],
    factors: Tensor,
    *,
    foreach: bool | None = None,
    buffer: FactorBuffer | None = None,
) -> None:
    """``tensors[i] *= factors[i]`` in place (one multi-tensor kernel, or a loop)."""
    if (
        buffer is not None
        and buffer.flat.shape == factors.shape
        and buffer.flat.dtype == factors.dtype
    ):
        buffer.flat.copy_(factors)
        scalars = buffer.views
    else:
        scalars = list(factors.unbind())
    if use_foreach(tensors, foreach):
        torch._foreach_mul_(list(tensors), scalars)
    else:
        for t, f in zip(tensors, scalars, strict=True):
            t.mul_(f)


def keep_nonfinite_(factors: Tensor, grad_norms: Tensor) -> Tensor:
    """Set the factors of pairs whose gradient norms (``|g_x_1| .. |g_x_n|, |g_y_1| ..``, or
    their squares) are not finite to 1, in place: such a pair is left alone."""
    n = grad_norms.shape[0] // 2
    ok = torch.isfinite(grad_norms[:n]) & torch.isfinite(grad_norms[n:])
    return factors.masked_fill_(~torch.cat((ok, ok)), 1.0)


def sbar_coefficients(
    stats: Tensor, lr_rho: float | Tensor, norm: str = "pair", total_g2: Tensor | None = None
) -> Tensor:
    """sBAR's per-pair ``c_i`` from ``stats = [|g_x|^2 (n), |g_y|^2 (n), |x|^2 (n), |y|^2 (n)]``.

    ``lr_rho`` is ``eta * rho`` (a float, or ``n`` values on the device).  With
    ``norm="global"``, ``|g|^2`` is ``total_g2`` when given (pairs on several devices), else the
    sum over these ``n`` pairs (finite gradient norms only).  ``c_i`` is 0 for a pair
    whose gradients are both zero or whose factors are both zero, and for a pair with a
    non-finite gradient norm (left alone, as nBAR/oBAR do); it is clamped to ``[-1/2, 1/2]`` so
    that no factor changes sign or grows more than 1.5x in one step.  No host synchronization.
    """
    if norm not in SBAR_NORMS:
        raise ValueError(f"Invalid norm: {norm!r} (expected one of {SBAR_NORMS})")
    n = stats.shape[0] // 4
    gx2, gy2, x2, y2 = stats[:n], stats[n : 2 * n], stats[2 * n : 3 * n], stats[3 * n :]
    g2 = gx2 + gy2
    finite = torch.isfinite(g2)
    g2 = torch.where(finite, g2, torch.zeros_like(g2))
    if norm == "pair":
        gnorm = g2.sqrt()
    else:
        gnorm = (g2.sum() if total_g2 is None else total_g2.to(g2)).sqrt().expand(n)
    denom = gnorm * (x2 + y2)
    ok = finite & (denom > 0)
    raw = (gx2 - gy2) / torch.where(ok, denom, torch.ones_like(denom))
    c = torch.where(ok, raw, torch.zeros_like(raw)) * lr_rho
    return c.clamp(-SBAR_CLAMP, SBAR_CLAMP)
