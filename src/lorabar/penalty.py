"""The explicit balancedness regularizer of paper Sec. 5.2 / Fig. 2(b).

    R(x, y) = alpha * sum over pairs of | |x|^2 - |y|^2 |

added to the loss (it comes from matrix sensing: Tu et al. 2016, Ge et al. 2017).  Its gradient
shrinks the larger factor, ``d/dx = 2 alpha sgn(|x|^2 - |y|^2) x``: with SGD this is oBAR's rule
with ``alpha_t eta`` replaced by ``2 alpha eta``.  BAR applies the same idea as a rescaling outside
the loss (like decoupled weight decay); the theory lab compares the two.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from . import _validate as _v
from .pairs import FactorPair

__all__ = ["balance_penalty"]


def balance_penalty(pairs: Sequence[FactorPair], alpha: float) -> Tensor:
    """Return ``alpha * sum_i | |x_i|^2 - |y_i|^2 |`` (differentiable, float32 or wider)."""
    _v.number("alpha", alpha, nonfinite=TypeError)  # (0.1 raised TypeError for inf/NaN)
    pairs = list(pairs)
    if not pairs:
        raise ValueError("Invalid pairs: empty (expected at least one FactorPair)")
    terms = []
    for p in pairs:
        dtype = torch.promote_types(p.x.dtype, torch.float32)
        terms.append((p.x.to(dtype).square().sum() - p.y.to(dtype).square().sum()).abs())
    return alpha * torch.stack(terms).sum()
