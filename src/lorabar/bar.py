"""Balancedness-aware regularization (BAR), attached to any torch optimizer.

Paper Sec. 5.2 and Algs. 2-3.  Before every base optimizer step ``t``, for every pair ``(x, y)``
whose factors both have gradients, with ``alpha_t = mu0 * schedule(t)`` and ``eta`` the current
``lr`` of the param group holding the pair:

```
nBAR:  if |g_x| >= |g_y|:  x <- (1 + alpha_t eta) x,  y <- (1 - alpha_t eta) y   else reversed
oBAR:  if |x|   >= |y|  :  x <- (1 - alpha_t eta) x,  y <- (1 + alpha_t eta) y   else reversed
```

lorabar's SAM-matched variant, whose rate follows SAM's own drift of B, is
[`lorabar.SBAR`][lorabar.sbar.SBAR].
``BAR(pairs, mode="sbar", rho=...)`` still builds one, with a ``FutureWarning`` (code written
against lorabar 0.1); ``BAR`` refuses every argument its mode does not read (``rho`` and
``norm`` with nBAR/oBAR; ``mu0``, ``schedule`` and ``total_steps`` with ``mode="sbar"``).

Like decoupled weight decay, the rescaling happens outside the loss.  ``BAR.attach(optimizer)``
registers it with `torch.optim.Optimizer.register_step_pre_hook()`, so it runs exactly when
the base ``step`` runs: a step that ``torch.amp.GradScaler`` skips for inf/NaN gradients skips BAR
and does not advance ``t``; LR schedulers, gradient clipping, gradient accumulation and the
Hugging Face Trainer (``Trainer(optimizers=(opt, scheduler))``) need nothing special.  Without a
scaler, a pair whose gradient holds an inf/NaN (``|g_x|`` or ``|g_y|`` not finite) is left alone
that step -- decided on the device, no host sync -- while the other pairs are rescaled.  Every
mode runs one pipeline (`lorabar.rescaler`): local squared norms, an all-reduce when the
factors are sharded, the rule, one multi-tensor multiply.

Reference: B. Li, L. Zhang, N. He, "Implicit Regularization of Sharpness-Aware Minimization for
Scale-Invariant Problems", NeurIPS 2024.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from . import _names
from . import _validate as _v
from . import schedules as _schedules
from .functional import MODES, SIGN_MODES, bar_factors, bar_signs, keep_nonfinite_
from .pairs import FactorPair
from .rescaler import PairRescaler

__all__ = ["BAR", "BARConfig"]

DEFAULT_MU0 = _names.DEFAULT_MU0  # one set of defaults for BAR, BARCallback and the
DEFAULT_SCHEDULE = _names.DEFAULT_SCHEDULE  # harness (lorabar._names)


@dataclass(frozen=True)
class BARConfig:
    """Validated BAR settings.

    Args:
        mode: ``"nbar"`` (gradient-norm rule, for LoRA/NOP) or ``"obar"`` (parameter-norm rule).
        mu0: the base coefficient, ``>= 0``.  The effective per-step rescaling is ``mu0 * lr``.
        schedule: ``"constant"``, ``"linear"``, ``"cosine"`` or a callable ``step -> float``.
        total_steps: the decay horizon of ``"linear"``/``"cosine"``.
        foreach: kernel choice (see [`lorabar.functional`][lorabar.functional]).
        rho: must stay ``None`` (only [`lorabar.SBAR`][lorabar.sbar.SBAR] reads a radius).
    """

    mode: str = "nbar"
    mu0: float = DEFAULT_MU0
    schedule: str | Callable[[int], float] = DEFAULT_SCHEDULE
    total_steps: int | None = None
    foreach: bool | None = None
    rho: float | None = None
    schedule_fn: Callable[[int], float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mode not in SIGN_MODES:
            raise ValueError(f"Invalid mode: {self.mode!r} (expected one of {MODES})")
        if self.rho is not None:
            raise ValueError(
                f"Invalid rho: {self.rho!r} (only lorabar.SBAR reads rho; "
                f"mode={self.mode!r} uses mu0 and schedule)"
            )
        _v.number("mu0", self.mu0)
        if self.foreach is not None:
            _v.boolean("foreach", self.foreach)
        if self.total_steps is not None:
            _schedules.check_total_steps(self.total_steps)
        object.__setattr__(self, "schedule_fn", _schedules.resolve(self.schedule, self.total_steps))


class BAR(PairRescaler):
    """nBAR / oBAR over a fixed list of [`FactorPair`][lorabar.pairs.FactorPair].

    Example:

    ```
    bar = lorabar.BAR(lorabar.find_lora_pairs(model), mode="nbar", mu0=0.5,
                      schedule="cosine", total_steps=1000)
    handle = bar.attach(optimizer)   # later: handle.remove()
    ```

    The step counter ``t`` (`step`) advances once per base optimizer step that ran.
    ``state_dict()`` / ``load_state_dict()`` save and restore it for exact resumption.

    Sharded factors: with FSDP (``use_orig_params=True``) pass ``process_group`` (the FSDP
    module's ``process_group``); the squared norms are summed across it before the comparison
    (see [`lorabar.distributed`][lorabar.distributed]).  DTensor factors (FSDP2 ``fully_shard``) are
    detected and
    reduced over their mesh.  Under DDP nothing is needed.
    """

    def __new__(
        cls,
        pairs: Iterable[FactorPair] = (),
        mode: str = "nbar",
        *args: Any,
        rho: float | None = None,
        norm: str | None = None,
        foreach: bool | None = None,
        process_group: Any = None,
        **kwargs: Any,
    ):
        if cls is BAR and mode in MODES and mode not in SIGN_MODES:  # 0.1's BAR(mode="sbar")
            given = [*("mu0", "schedule", "total_steps")[: len(args)], *sorted(kwargs)]
            if given:
                raise ValueError(
                    f"Invalid arguments for mode={mode!r}: {', '.join(given)} "
                    "(nBAR/oBAR settings); sBAR reads rho and norm: "
                    "lorabar.SBAR(pairs, rho=..., norm=...)"
                )
            warnings.warn(
                f"BAR(mode={mode!r}) is deprecated and builds a lorabar.SBAR; call "
                "lorabar.SBAR(pairs, rho=..., norm=...) instead",
                FutureWarning,
                stacklevel=2,
            )
            from .sbar import SBAR  # the extension, only on this deprecated path

            return SBAR(
                pairs,
                rho=rho,
                norm="pair" if norm is None else norm,
                foreach=foreach,
                process_group=process_group,
            )
        return super().__new__(cls)

    def __init__(
        self,
        pairs: Iterable[FactorPair],
        mode: str = "nbar",
        mu0: float = DEFAULT_MU0,
        schedule: str | Callable[[int], float] = DEFAULT_SCHEDULE,
        total_steps: int | None = None,
        *,
        foreach: bool | None = None,
        process_group: Any = None,
        rho: float | None = None,
        norm: str | None = None,
    ) -> None:
        if norm is not None:
            raise ValueError(
                f"Invalid norm: {norm!r} (only lorabar.SBAR reads norm; "
                f"mode={mode!r} uses mu0 and schedule)"
            )
        self.config = BARConfig(
            mode=mode, mu0=mu0, schedule=schedule, total_steps=total_steps, foreach=foreach, rho=rho
        )
        super().__init__(pairs, foreach=foreach, process_group=process_group)
        self._warned_precision = False
        # 16-bit factors cannot represent a rescaling by (1 +- c) with c below eps/2 (bf16: 2^-9).
        half = [torch.finfo(t.dtype).eps for p in self.pairs for t in p.tensors if t.itemsize <= 2]
        self._half_eps = max(half) if half else 0.0

    @property
    def mode(self) -> str:  # type: ignore[override]
        return self.config.mode

    def alpha(self, step: int | None = None) -> float:
        """``alpha_t = mu0 * schedule(t)`` (at the current step by default)."""
        t = self.step if step is None else step
        return self.config.mu0 * float(self.config.schedule_fn(t))

    # ----------------------------------------------------------------- the rule
    def _coefficients(self, lrs: Sequence[float]) -> list[float] | None:
        alpha = self.alpha()
        if alpha <= 0.0:
            return None
        coeffs = [alpha * float(lr) for lr in lrs]
        self._check_precision(max(coeffs))
        self._check_rate(max(coeffs))
        return coeffs

    @property
    def needs_gradients(self) -> bool:
        """nBAR compares gradient norms; oBAR reads only the factors and rescales every pair,
        with or without gradients (a pair whose gradient holds an inf/NaN is still left alone)."""
        return self.mode == "nbar"

    def _reads(self, xs, ys, gx, gy) -> list[Tensor]:
        # the gradients (a pair with an inf/NaN gradient is left alone, oBAR too), then for oBAR
        # the factors themselves
        return [*gx, *gy] if self.mode == "nbar" else [*gx, *gy, *xs, *ys]

    def _factors(self, stats: Tensor, coeffs: float | Tensor, dtype: torch.dtype) -> Tensor:
        n = stats.shape[0] // (2 if self.mode == "nbar" else 4)
        grow = bar_signs(stats[: 2 * n] if self.mode == "nbar" else stats[2 * n :], self.mode)
        return keep_nonfinite_(bar_factors(grow, coeffs, dtype), stats[: 2 * n])

    def apply_check(self, lrs: Sequence[float]) -> None:
        """Raise ``ValueError`` unless ``0 <= alpha_t * lr < 1`` for every pair at the current
        step (otherwise a factor would flip sign)."""
        alpha = self.alpha()
        if lrs and 0.0 <= alpha * min(lrs) and alpha * max(lrs) < 1.0:
            return
        for i, lr in enumerate(lrs):
            c = alpha * float(lr)
            if not 0.0 <= c < 1.0:
                raise ValueError(
                    f"Invalid alpha*lr: {alpha:.6g}*{float(lr):.6g} = {c:.6g} for pair "
                    f"{self.pairs[i].name!r} at step {self.step} (mu0={self.config.mu0}); "
                    "BAR needs "
                    "0 <= mu0*schedule(t)*lr < 1, otherwise a factor would flip sign"
                )

    def _check_precision(self, coeff: float) -> None:
        if self._warned_precision or coeff == 0.0 or coeff > self._half_eps / 2:
            return
        self._warned_precision = True
        warnings.warn(
            f"BAR's per-step rescaling alpha*lr = {coeff:.3g} is below half the precision "
            f"({self._half_eps:.3g}) of a 16-bit factor, so rounding turns it into a no-op. "
            "Keep LoRA factors in float32 (autocast for compute is fine) or raise mu0.",
            RuntimeWarning,
            stacklevel=4,
        )

    def _identity(self) -> dict[str, Any]:
        c = self.config
        schedule = c.schedule if isinstance(c.schedule, str) else c.schedule_fn.__qualname__
        return {
            **super()._identity(),
            "mu0": c.mu0,
            "schedule": schedule,
            "total_steps": c.total_steps,
        }

    def __repr__(self) -> str:
        c = self.config
        return (
            f"BAR(mode={c.mode!r}, mu0={c.mu0}, schedule={c.schedule_fn.__qualname__}, "
            f"pairs={len(self.pairs)}, step={self.step})"
        )
