"""Balancedness-aware regularization (BAR), attached to any torch optimizer.

Paper Sec. 5.2 and Algs. 2-3.  Before every base optimizer step ``t``, for every pair ``(x, y)``
whose factors both have gradients, with ``alpha_t = mu0 * schedule(t)`` and ``eta`` the current
``lr`` of the param group holding the pair::

    nBAR:  if |g_x| >= |g_y|:  x <- (1 + alpha_t eta) x,  y <- (1 - alpha_t eta) y   else reversed
    oBAR:  if |x|   >= |y|  :  x <- (1 - alpha_t eta) x,  y <- (1 + alpha_t eta) y   else reversed

sBAR (``mode="sbar"``, lorabar's extension beyond the paper) replaces the fixed rate by SAM's own
first-order drift of the balancedness (Thm. 2, eq. 5): one knob ``rho`` (SAM's radius), no
schedule, data-responsive (it follows the gradient imbalance, as SAM does)::

    c = clamp(eta rho (|g_x|^2 - |g_y|^2) / (|g| (|x|^2 + |y|^2)), -1/2, 1/2)
    x <- (1 + c) x,   y <- (1 - c) y          (B changes by eta rho (|g_x|^2 - |g_y|^2) / |g|)

with ``|g|`` the pair's gradient norm (``norm="pair"``, layer-wise, the default) or the norm over
all pairs (``norm="global"``, as SAM's perturbation uses).  Compare the DAS/"gBAR" rescaling for
k factors (arXiv 2508.10435), which also derives a rescaling from SAM's flow.

Like decoupled weight decay, the rescaling happens outside the loss.  ``BAR.attach(optimizer)``
registers it with :meth:`torch.optim.Optimizer.register_step_pre_hook`, so it runs exactly when
the base ``step`` runs: a step that ``torch.amp.GradScaler`` skips for inf/NaN gradients skips BAR
and does not advance ``t``; LR schedulers, gradient clipping, gradient accumulation and the
Hugging Face Trainer (``Trainer(optimizers=(opt, scheduler))``) need nothing special.  Without a
scaler, a pair whose gradient holds an inf/NaN (``|g_x|`` or ``|g_y|`` not finite) is left alone
that step -- decided on the device, no host sync -- while the other pairs are rescaled.

Reference: B. Li, L. Zhang, N. He, "Implicit Regularization of Sharpness-Aware Minimization for
Scale-Invariant Problems", NeurIPS 2024.
"""

from __future__ import annotations

import math
import warnings
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.utils.hooks import RemovableHandle

from . import _shard as _dist
from . import schedules as _schedules
from .functional import (
    MODES,
    SBAR_NORMS,
    FactorBuffer,
    bar_,
    bar_factors,
    bar_signs,
    compute_dtype,
    keep_nonfinite_,
    sbar_,
    sbar_coefficients,
    scale_,
)
from .pairs import FactorPair

__all__ = ["BAR", "BARConfig"]


@dataclass(frozen=True)
class BARConfig:
    """Validated BAR settings.

    Args:
        mode: ``"nbar"`` (gradient-norm rule, for LoRA/NOP), ``"obar"`` (parameter-norm rule) or
            ``"sbar"`` (SAM-matched rate; reads ``rho`` and ``norm``, not ``mu0``/``schedule``).
        mu0: the base coefficient, ``>= 0``.  The effective per-step rescaling is ``mu0 * lr``.
        schedule: ``"constant"``, ``"linear"``, ``"cosine"`` or a callable ``step -> float``.
        total_steps: the decay horizon of ``"linear"``/``"cosine"``.
        foreach: kernel choice (see :func:`lorabar.functional.bar_`).
        rho: sBAR's radius (SAM's ``rho``), finite and ``> 0``; only with ``mode="sbar"``.
        norm: sBAR's ``|g|``: ``"pair"`` (per pair, default) or ``"global"`` (over all pairs).
    """

    mode: str = "nbar"
    mu0: float = 0.5
    schedule: str | Callable[[int], float] = "constant"
    total_steps: int | None = None
    foreach: bool | None = None
    rho: float | None = None
    norm: str = "pair"
    schedule_fn: Callable[[int], float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"Invalid mode: {self.mode!r} (expected one of {MODES})")
        if self.mode == "sbar":
            if self.rho is None:
                raise ValueError("Invalid rho: None (mode='sbar' needs rho, SAM's radius, > 0)")
            if isinstance(self.rho, bool) or not isinstance(self.rho, int | float):
                raise TypeError(f"Invalid rho: {self.rho!r} (expected a float)")
            if not math.isfinite(self.rho) or self.rho <= 0:
                raise ValueError(f"Invalid rho: {self.rho!r} (expected a finite value > 0)")
            if self.norm not in SBAR_NORMS:
                raise ValueError(f"Invalid norm: {self.norm!r} (expected one of {SBAR_NORMS})")
        elif self.rho is not None:
            raise ValueError(f"Invalid rho: {self.rho!r} (only mode='sbar' reads rho; "
                             f"mode={self.mode!r} uses mu0 and schedule)")
        if isinstance(self.mu0, bool) or not isinstance(self.mu0, int | float):
            raise TypeError(f"Invalid mu0: {self.mu0!r} (expected a float)")
        if not math.isfinite(self.mu0) or self.mu0 < 0:
            raise ValueError(f"Invalid mu0: {self.mu0!r} (expected a finite value >= 0)")
        if not (self.foreach is None or isinstance(self.foreach, bool)):
            raise TypeError(f"Invalid foreach: {self.foreach!r} (expected bool or None)")
        if self.total_steps is not None:
            _schedules._check_total_steps(self.total_steps)
        object.__setattr__(self, "schedule_fn", _schedules.resolve(self.schedule, self.total_steps))


RATE_WARNING = 0.1  # alpha_t * lr above this: a RuntimeWarning, once per BAR
# optimizer -> the BARs attached to it (weak: neither keeps the other alive)
_HANDLED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _check_no_shared_storage(pairs: Sequence[FactorPair]) -> None:
    """Refuse two pairs whose factors are views of one storage (a shared tensor would be
    rescaled twice per step)."""
    from .pairs import _shares_storage

    tensors = [(t, p.name) for p in pairs for t in p.tensors]
    by_storage: dict[int, list[tuple[Tensor, str]]] = {}
    for t, name in tensors:
        try:
            key = t.untyped_storage().data_ptr()
        except (RuntimeError, NotImplementedError):
            continue
        if key:
            by_storage.setdefault(key, []).append((t, name))
    for group in by_storage.values():
        for i, (a, na) in enumerate(group):
            for b, nb in group[i + 1:]:
                if na != nb and _shares_storage(a, b):
                    raise ValueError(f"Invalid pairs: a factor of {nb!r} shares storage with a "
                                     f"factor of {na!r}; it would be rescaled twice per step")


def _check_not_handled(optimizer: torch.optim.Optimizer, bar: BAR) -> None:
    mine = {id(t) for p in bar.pairs for t in p.tensors}
    for ref in _HANDLED.get(optimizer, []):
        other = ref()
        if other is None or other is bar or not other.attached:
            continue
        shared = [p.name for p in other.pairs if {id(p.x), id(p.y)} & mine]
        if shared:
            raise ValueError(
                f"Invalid pairs: {len(shared)} pair(s) (e.g. {shared[0]!r}) are already handled "
                f"by another BAR attached to this {type(optimizer).__name__} ({other!r}); a second "
                "BAR would rescale them twice per step. Remove the first one's handle, or give "
                "each BAR its own pairs")


class BAR:
    """BAR over a fixed list of :class:`~lorabar.FactorPair`.

    Example::

        bar = lorabar.BAR(lorabar.find_lora_pairs(model), mode="nbar", mu0=0.5,
                          schedule="cosine", total_steps=1000)
        handle = bar.attach(optimizer)   # later: handle.remove()

    The step counter ``t`` (:attr:`step`) advances once per base optimizer step that ran.
    ``state_dict()`` / ``load_state_dict()`` save and restore it for exact resumption.

    Sharded factors: with FSDP (``use_orig_params=True``) pass ``process_group`` (the FSDP
    module's ``process_group``); the squared norms are summed across it before the comparison
    (see :mod:`lorabar.distributed`).  DTensor factors (FSDP2 ``fully_shard``) are detected and
    reduced over their mesh.  Under DDP nothing is needed.
    """

    def __init__(
        self,
        pairs: Iterable[FactorPair],
        mode: str = "nbar",
        mu0: float = 0.5,
        schedule: str | Callable[[int], float] = "constant",
        total_steps: int | None = None,
        *,
        foreach: bool | None = None,
        process_group: Any = None,
        rho: float | None = None,
        norm: str = "pair",
    ) -> None:
        self.config = BARConfig(
            mode=mode, mu0=mu0, schedule=schedule, total_steps=total_steps, foreach=foreach,
            rho=rho, norm=norm,
        )
        self.pairs: list[FactorPair] = list(pairs)
        if not self.pairs:
            raise ValueError("Invalid pairs: empty (expected at least one FactorPair)")
        seen: dict[int, str] = {}
        for pair in self.pairs:
            if not isinstance(pair, FactorPair):
                raise TypeError(f"Invalid pairs: expected FactorPair items, got {type(pair).__name__}")
            for t in pair.tensors:
                if id(t) in seen:
                    raise ValueError(
                        f"Invalid pairs: a tensor of {pair.name!r} also belongs to {seen[id(t)]!r}"
                    )
                seen[id(t)] = pair.name
        _check_no_shared_storage(self.pairs)
        self.step = 0
        self._sharded, self._group = _dist.resolve_group(
            [t for p in self.pairs for t in p.tensors], process_group
        )
        self._has_grad: dict[tuple[bool, ...], Tensor] = {}
        if not self._sharded:
            for pair in self.pairs:
                if pair.x.numel() == 0 or pair.y.numel() == 0:
                    raise ValueError(
                        f"Invalid pairs: a factor of {pair.name!r} has no elements on this rank; "
                        "if FSDP shards it (use_orig_params=True), pass "
                        "process_group=fsdp_model.process_group so that norms are summed across ranks"
                    )
        # Pairs grouped by device, with a reusable factor buffer for steps where all have grads.
        by_device: dict[torch.device, list[int]] = {}
        for i, p in enumerate(self.pairs):
            by_device.setdefault(p.x.device, []).append(i)
        self._by_device: list[tuple[list[int], FactorBuffer]] = [
            (idx, FactorBuffer(len(idx), compute_dtype([t for i in idx for t in self.pairs[i].tensors]),
                               device))
            for device, idx in by_device.items()
        ]
        self._handle: RemovableHandle | None = None
        self._groups: list[tuple[int, int]] = []  # (group of x, group of y) per pair
        self._warned_precision = False
        self._warned_rate = False
        # 16-bit factors cannot represent a rescaling by (1 +- c) with c below eps/2 (bf16: 2^-9).
        half = [torch.finfo(t.dtype).eps for p in self.pairs for t in p.tensors if t.itemsize <= 2]
        self._half_eps = max(half) if half else 0.0

    # ----------------------------------------------------------------- schedule
    @property
    def mode(self) -> str:
        return self.config.mode

    def alpha(self, step: int | None = None) -> float:
        """``alpha_t = mu0 * schedule(t)`` (at the current step by default)."""
        t = self.step if step is None else step
        return self.config.mu0 * float(self.config.schedule_fn(t))

    # ----------------------------------------------------------------- applying
    def apply(self, lr: float | Sequence[float]) -> None:
        """Apply one BAR step with learning rate ``lr`` (one value, or one per pair) and advance ``t``.

        This is what the optimizer hook calls; use it directly when there is no optimizer
        (e.g. hand-written SGD in the theory lab).
        """
        lrs = [lr] * len(self.pairs) if isinstance(lr, int | float) else list(lr)
        if len(lrs) != len(self.pairs):
            raise ValueError(f"Invalid lr: {len(lrs)} values for {len(self.pairs)} pairs")
        self.apply_check(lrs)
        if self.mode == "sbar":
            self._apply_sbar([self.config.rho * float(lr) for lr in lrs])
            self.step += 1
            return
        alpha = self.alpha()
        if alpha > 0.0:
            coeffs = [alpha * float(lr) for lr in lrs]
            self._check_precision(max(coeffs))
            self._check_rate(max(coeffs))
            for idx, buffer in self._by_device:
                self._run(idx, coeffs, buffer)
        self.step += 1

    def _run(self, idx: list[int], coeffs: list[float], buffer: FactorBuffer) -> None:
        if self._sharded:
            return self._run_sharded(idx, coeffs, buffer)
        pairs = self.pairs
        active = [i for i in idx if pairs[i].x.grad is not None and pairs[i].y.grad is not None]
        if not active:
            return
        c = [coeffs[i] for i in active]
        coeff: float | Tensor = c[0]
        if any(v != c[0] for v in c):
            coeff = torch.tensor(c, dtype=torch.float64).to(pairs[active[0]].x.device)
        sub = [pairs[i] for i in active]
        bar_(
            [p.x for p in sub],
            [p.y for p in sub],
            [p.x.grad for p in sub],  # oBAR too: a pair with an inf/NaN gradient is left alone
            [p.y.grad for p in sub],
            coeff,
            mode=self.mode,
            foreach=self.config.foreach,
            buffer=buffer if len(active) == len(idx) else None,
        )

    @torch.no_grad()
    def _run_sharded(self, idx: list[int], coeffs: list[float], buffer: FactorBuffer) -> None:
        """Every rank takes part (a collective), whatever gradients its slices have."""
        local = _dist.local_tensor
        pairs = [self.pairs[i] for i in idx]
        n = len(pairs)
        xs = [local(p.x) for p in pairs]
        ys = [local(p.y) for p in pairs]
        nbar = self.mode == "nbar"
        dtype = buffer.flat.dtype
        device = xs[0].device
        empty = torch.zeros(0, dtype=dtype, device=device)
        gx = [local(p.x.grad) if p.x.grad is not None else empty for p in pairs]
        gy = [local(p.y.grad) if p.y.grad is not None else empty for p in pairs]
        present = tuple(p.x.grad is not None and p.y.grad is not None for p in pairs)
        has_grad = self._has_grad.get(present)
        if has_grad is None:  # one host-to-device copy per distinct pattern, not per step
            has_grad = self._has_grad[present] = torch.tensor(present, dtype=dtype).to(device)
        # squared norms of g_x, g_y (and of x, y for oBAR), has-gradient counts: one all-reduce
        norms = torch._foreach_norm([*gx, *gy] + ([] if nbar else [*xs, *ys]), 2, dtype=dtype)
        stats = torch.cat((torch.stack(norms).square(), has_grad))
        _dist.all_reduce_sum_(stats, self._group)  # shard contributions summed over ranks
        sq = stats[: 2 * n] if nbar else stats[2 * n : 4 * n]
        grow = bar_signs(sq, self.mode)
        cs = [coeffs[i] for i in idx]
        if all(v == cs[0] for v in cs):
            c = torch.full((n,), cs[0], dtype=dtype, device=device)
        else:
            c = torch.tensor(cs, dtype=torch.float64).to(device=device, dtype=dtype)
        c = torch.where(stats[-n:] > 0, c, torch.zeros_like(c))
        factors = keep_nonfinite_(bar_factors(grow, c, dtype), stats[: 2 * n])
        scale_([*xs, *ys], factors, foreach=True, buffer=buffer)

    @torch.no_grad()
    def _apply_sbar(self, coeffs: list[float]) -> None:
        """One sBAR step over every device's pairs (``coeffs``: ``eta * rho`` per pair)."""
        pairs = self.pairs
        work = []
        for idx, buffer in self._by_device:
            if not self._sharded:
                idx_ = [i for i in idx if pairs[i].x.grad is not None and pairs[i].y.grad is not None]
                if idx_:
                    work.append((idx_, buffer if len(idx_) == len(idx) else None))
            else:
                work.append((idx, buffer))
        total = None
        if self.config.norm == "global" and len(work) > 1:  # pairs on several devices
            home = pairs[work[0][0][0]].x.device
            parts = []
            for idx, _ in work:
                g = [pairs[i].x.grad for i in idx] + [pairs[i].y.grad for i in idx]
                sq = torch.stack(torch._foreach_norm(g, 2, dtype=torch.float64)).square()
                g2 = sq[: len(idx)] + sq[len(idx):]  # per pair; non-finite pairs count 0
                parts.append(torch.where(torch.isfinite(g2), g2, torch.zeros_like(g2)).sum().to(home))
            total = torch.stack(parts).sum()
        for idx, buffer in work:
            lr_rho = self._coeff_tensor([coeffs[i] for i in idx], pairs[idx[0]].x.device,
                                        buffer.flat.dtype if buffer is not None else None)
            if self._sharded:
                self._run_sharded_sbar(idx, lr_rho, buffer)
                continue
            sub = [pairs[i] for i in idx]
            sbar_([p.x for p in sub], [p.y for p in sub], [p.x.grad for p in sub],
                  [p.y.grad for p in sub], lr_rho, norm=self.config.norm,
                  foreach=self.config.foreach, buffer=buffer, total_g2=total)

    @staticmethod
    def _coeff_tensor(cs: list[float], device: torch.device, dtype: torch.dtype | None):
        if all(v == cs[0] for v in cs):
            return cs[0]
        return torch.tensor(cs, dtype=torch.float64).to(device=device, dtype=dtype or torch.float32)

    def _run_sharded_sbar(self, idx: list[int], lr_rho: float | Tensor,
                          buffer: FactorBuffer) -> None:
        """sBAR on FSDP/DTensor shards: the four squared norms per pair are summed across ranks
        (one all-reduce) before the coefficients are formed; every rank takes part."""
        local = _dist.local_tensor
        pairs = [self.pairs[i] for i in idx]
        dtype = buffer.flat.dtype
        xs = [local(p.x) for p in pairs]
        ys = [local(p.y) for p in pairs]
        empty = torch.zeros(0, dtype=dtype, device=xs[0].device)
        gx = [local(p.x.grad) if p.x.grad is not None else empty for p in pairs]
        gy = [local(p.y.grad) if p.y.grad is not None else empty for p in pairs]
        stats = torch.stack(torch._foreach_norm([*gx, *gy, *xs, *ys], 2, dtype=dtype)).square()
        _dist.all_reduce_sum_(stats, self._group)
        c = sbar_coefficients(stats, lr_rho, self.config.norm)
        scale_([*xs, *ys], torch.cat((1.0 + c, 1.0 - c)), foreach=True, buffer=buffer)

    def apply_check(self, lrs: Sequence[float]) -> None:
        """Raise ``ValueError`` unless ``0 <= alpha_t * lr < 1`` for every pair at the current step
        (sBAR: unless every ``lr`` is finite and ``>= 0``; its clamp bounds the rescaling)."""
        if self.mode == "sbar":
            bad = [(i, lr) for i, lr in enumerate(lrs) if not (math.isfinite(lr) and lr >= 0)]
            if bad:
                i, lr = bad[0]
                raise ValueError(f"Invalid lr: {lr!r} for pair {self.pairs[i].name!r} (sBAR "
                                 "needs a finite lr >= 0)")
            return
        alpha = self.alpha()
        if lrs and 0.0 <= alpha * min(lrs) and alpha * max(lrs) < 1.0:
            return
        for i, lr in enumerate(lrs):
            c = alpha * float(lr)
            if not 0.0 <= c < 1.0:
                raise ValueError(
                    f"Invalid alpha*lr: {alpha:.6g}*{float(lr):.6g} = {c:.6g} for pair "
                    f"{self.pairs[i].name!r} at step {self.step} (mu0={self.config.mu0}); BAR needs "
                    "0 <= mu0*schedule(t)*lr < 1, otherwise a factor would flip sign"
                )

    def _check_rate(self, coeff: float) -> None:
        if self._warned_rate or coeff <= RATE_WARNING:
            return
        self._warned_rate = True
        warnings.warn(
            f"BAR's per-step rescaling alpha_t*lr = {coeff:.3g} exceeds {RATE_WARNING}: a factor "
            f"changes by more than {RATE_WARNING:.0%} per step (at step {self.step}); "
            f"{self.mode} at such a rate drives |B| to ~0 within tens of steps and the factors far "
            "from where the loss put them. The paper's settings give alpha*lr of 1e-4..1e-2; "
            "lower mu0.", RuntimeWarning, stacklevel=3)

    def _check_precision(self, coeff: float) -> None:
        if self._warned_precision or coeff == 0.0 or coeff > self._half_eps / 2:
            return
        self._warned_precision = True
        warnings.warn(
            f"BAR's per-step rescaling alpha*lr = {coeff:.3g} is below half the precision "
            f"({self._half_eps:.3g}) of a 16-bit factor, so rounding turns it into a no-op. "
            "Keep LoRA factors in float32 (autocast for compute is fine) or raise mu0.",
            RuntimeWarning,
            stacklevel=3,
        )

    # ----------------------------------------------------------------- optimizer
    def attach(self, optimizer: torch.optim.Optimizer) -> RemovableHandle:
        """Run BAR before every ``optimizer.step()``; returns a handle whose ``remove()`` detaches it.

        Every factor must be a parameter of ``optimizer``.  When the two factors of a pair sit in
        param groups with different learning rates (LoRA+: ``lr_B = ratio * lr_A``), the pair's
        ``eta`` is their geometric mean ``sqrt(lr_x * lr_y)`` (see :meth:`pair_lr`).  A second
        BAR over factors that a BAR attached to the same optimizer already handles is refused:
        they would be rescaled twice per step.
        """
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"Invalid optimizer: expected a torch.optim.Optimizer, got {type(optimizer).__name__}"
            )
        if self.attached:
            raise RuntimeError("BAR is already attached to an optimizer; call handle.remove() first")
        group_of: dict[int, int] = {}
        for gi, group in enumerate(optimizer.param_groups):
            for p in group["params"]:
                group_of[id(p)] = gi
        groups = []
        for pair in self.pairs:
            missing = [n for n, t in (("x", pair.x), ("y", pair.y)) if id(t) not in group_of]
            if missing:
                raise ValueError(
                    f"Invalid pairs: factor {'/'.join(missing)} of {pair.name!r} is not a parameter "
                    f"of the {type(optimizer).__name__} BAR is attached to"
                )
            groups.append((group_of[id(pair.x)], group_of[id(pair.y)]))
        _check_not_handled(optimizer, self)
        self._groups = groups
        lrs = self._lrs(optimizer)
        self.apply_check(lrs)
        self._handle = optimizer.register_step_pre_hook(self._pre_hook)
        _HANDLED.setdefault(optimizer, []).append(weakref.ref(self))
        return self._handle

    @property
    def attached(self) -> bool:
        """Whether a hook registered by :meth:`attach` is still in place."""
        if self._handle is None:
            return False
        hooks = self._handle.hooks_dict_ref()
        return hooks is not None and self._handle.id in hooks

    @staticmethod
    def pair_lr(lr_x: float, lr_y: float) -> float:
        """The learning rate ``eta`` of a pair whose factors train with ``lr_x`` and ``lr_y``:
        ``sqrt(lr_x * lr_y)`` (``lr_x`` when they are equal, as in the paper).

        Why: per-factor gradient descent ``x -= lr_x g_x, y -= lr_y g_y`` is plain gradient
        descent with one rate ``eta`` on ``u = x / a, v = y / b`` with ``a^2 = lr_x / eta`` and
        ``b^2 = lr_y / eta``; the product is unchanged (``x y^T = u v^T``) exactly when
        ``a b = 1``, i.e. ``eta = sqrt(lr_x lr_y)``.  So ``(u, v)`` is a scale-invariant pair
        trained at the common rate ``sqrt(lr_x lr_y)``, and BAR's rescaling of ``(u, v)`` by
        ``(1 + c, 1 - c)`` is the same rescaling of ``(x, y)``.  One coefficient for both factors
        keeps the product's first-order change zero: ``(1 + c)(1 - c) = 1 - c^2``; an
        ``lr``-weighted pair ``(1 + a lr_x, 1 - a lr_y)`` would change it by
        ``a (lr_x - lr_y)`` at first order.  The decision (which factor grows) compares the
        model's own factors, as PEFT's LoRA+ keeps them.
        """
        return lr_x if lr_x == lr_y else math.sqrt(lr_x * lr_y)

    def _lrs(self, optimizer: torch.optim.Optimizer) -> list[float]:
        group_lr = [float(g["lr"]) for g in optimizer.param_groups]
        return [self.pair_lr(group_lr[gx], group_lr[gy]) for gx, gy in self._groups]

    def _pre_hook(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self.apply(self._lrs(optimizer))

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        state = {"step": self.step, "mode": self.mode, "mu0": self.config.mu0}
        if self.mode == "sbar":
            state |= {"rho": self.config.rho, "norm": self.config.norm}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not isinstance(state, Mapping):
            raise TypeError(f"Invalid state_dict: a {type(state).__name__} (expected the dict "
                            "that BAR.state_dict() returns)")
        for key in ("mode", "mu0", "rho", "norm"):
            if key in state and state[key] != getattr(self.config, key):
                raise ValueError(
                    f"Invalid state_dict: {key}={state[key]!r} but this BAR has "
                    f"{key}={getattr(self.config, key)!r}"
                )
        step = state.get("step")
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"Invalid state_dict: step={step!r} (expected an int >= 0)")
        self.step = step

    def __repr__(self) -> str:
        c = self.config
        if c.mode == "sbar":
            return (f"BAR(mode='sbar', rho={c.rho}, norm={c.norm!r}, pairs={len(self.pairs)}, "
                    f"step={self.step})")
        return (
            f"BAR(mode={c.mode!r}, mu0={c.mu0}, schedule={c.schedule_fn.__qualname__}, "
            f"pairs={len(self.pairs)}, step={self.step})"
        )
