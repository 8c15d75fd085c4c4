"""sBAR: BAR at SAM's own rate (lorabar's extension beyond the paper).

It replaces BAR's fixed rate ``alpha_t eta`` by SAM's own first-order drift of the balancedness
(the paper's Thm. 2, eq. 5): one knob ``rho`` (SAM's radius), no schedule, data-responsive (it
follows the gradient imbalance, as SAM does).  Before every base optimizer step, per pair:

```
c = clamp(eta rho (|g_x|^2 - |g_y|^2) / (|g| (|x|^2 + |y|^2)), -1/2, 1/2)
x <- (1 + c) x,   y <- (1 - c) y          (B changes by eta rho (|g_x|^2 - |g_y|^2) / |g|)
```

with ``|g|`` the pair's gradient norm (``norm="pair"``, layer-wise, the default) or the norm over
all pairs (``norm="global"``, as SAM's perturbation uses).  Compare the DAS/"gBAR" rescaling for
k factors (arXiv 2508.10435), which also derives a rescaling from SAM's flow.  It shares
attachment, state and the rescaling pipeline with [`lorabar.BAR`][lorabar.bar.BAR]
([`lorabar.rescaler.PairRescaler`][lorabar.rescaler.PairRescaler]).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from . import _validate as _v
from .functional import MODES, SBAR_NORMS, sbar_coefficients, squared_norms
from .pairs import FactorPair
from .rescaler import PairRescaler

__all__ = ["SBAR", "SBARConfig"]

MODE = MODES[2]  # the mode name sBAR has in state dicts, configs and the registry


@dataclass(frozen=True)
class SBARConfig:
    """Validated sBAR settings: ``rho`` (SAM's radius, finite, ``> 0``), ``norm`` (``"pair"`` or
    ``"global"``) and ``foreach`` (kernel choice)."""

    rho: float | None = None
    norm: str = "pair"
    foreach: bool | None = None

    def __post_init__(self) -> None:
        if self.rho is None:
            raise ValueError(f"Invalid rho: None (mode={MODE!r} needs rho, SAM's radius, > 0)")
        _v.number("rho", self.rho, strict=True)
        if self.norm not in SBAR_NORMS:
            raise _v.choice("norm", self.norm, SBAR_NORMS)
        if self.foreach is not None:
            _v.boolean("foreach", self.foreach)


class SBAR(PairRescaler):
    """sBAR over a fixed list of [`FactorPair`][lorabar.pairs.FactorPair] (see the module
    docstring).

    Example:

    ```
    sbar = lorabar.SBAR(lorabar.find_lora_pairs(model), rho=0.05)
    handle = sbar.attach(optimizer)
    ```

    ``BAR(pairs, mode="sbar", rho=...)`` builds the same object.
    """

    mode = MODE

    def __init__(
        self,
        pairs: Iterable[FactorPair],
        rho: float | None = None,
        norm: str = "pair",
        *,
        foreach: bool | None = None,
        process_group: Any = None,
    ) -> None:
        self.config = SBARConfig(rho=rho, norm=norm, foreach=foreach)
        super().__init__(pairs, foreach=foreach, process_group=process_group)
        self._total_g2: Tensor | None = None

    def apply_check(self, lrs: Sequence[float]) -> None:
        """Raise ``ValueError`` unless every ``lr`` is finite and ``>= 0`` (the clamp bounds the
        rescaling)."""
        bad = [(i, lr) for i, lr in enumerate(lrs) if not (math.isfinite(lr) and lr >= 0)]
        if bad:
            i, lr = bad[0]
            raise ValueError(
                f"Invalid lr: {lr!r} for pair {self.pairs[i].name!r} (sBAR needs a finite lr >= 0)"
            )

    def _coefficients(self, lrs: Sequence[float]) -> list[float]:
        return [self.config.rho * float(lr) for lr in lrs]  # eta * rho

    def _begin_step(self) -> None:
        """``norm="global"`` with pairs on several devices: ``|g|^2`` over all of them first."""
        self._total_g2 = None
        if self.config.norm != "global" or len(self._by_device) < 2 or self._sharded:
            return
        home = self.pairs[self._by_device[0][0][0]].x.device
        parts = []
        for idx, _ in self._by_device:
            idx = [
                i
                for i in idx
                if self.pairs[i].x.grad is not None and self.pairs[i].y.grad is not None
            ]
            if not idx:
                continue
            g = [self.pairs[i].x.grad for i in idx] + [self.pairs[i].y.grad for i in idx]
            sq = squared_norms(g, dtype=torch.float64)
            g2 = sq[: len(idx)] + sq[len(idx) :]  # per pair; non-finite pairs count 0
            parts.append(torch.where(torch.isfinite(g2), g2, torch.zeros_like(g2)).sum().to(home))
        self._total_g2 = torch.stack(parts).sum() if parts else None

    def _reads(self, xs, ys, gx, gy) -> list[Tensor]:
        return [*gx, *gy, *xs, *ys]

    def _factors(self, stats: Tensor, coeffs: float | Tensor, dtype: torch.dtype) -> Tensor:
        c = sbar_coefficients(stats, coeffs, self.config.norm, self._total_g2)
        return torch.cat((1.0 + c, 1.0 - c))

    def _identity(self) -> dict[str, Any]:
        return {**super()._identity(), "rho": self.config.rho, "norm": self.config.norm}

    def __repr__(self) -> str:
        c = self.config
        return (
            f"SBAR(mode={self.mode!r}, rho={c.rho}, norm={c.norm!r}, pairs={len(self.pairs)}, "
            f"step={self.step})"
        )
