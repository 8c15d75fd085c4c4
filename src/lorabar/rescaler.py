"""What [`lorabar.BAR`][lorabar.bar.BAR] and [`lorabar.SBAR`][lorabar.sbar.SBAR] share: the pairs,
the attachment to an
optimizer, the step counter, and the one rescaling pipeline every mode runs, sharded or not:

```
stats   = local squared norms of what the rule reads (gradients, and factors for some rules),
          in at least float32, in one multi-tensor pass (or a per-pair loop, equal)
stats   = all-reduce(stats) over the shard group      (FSDP/DTensor factors; else nothing)
factors = rule(stats, coefficients)                    (one factor per x and per y, on the
                                                        device: no host synchronization)
scale_([*xs, *ys], factors)                            (one multi-tensor multiply)
```

A rule that reads gradients (nBAR, sBAR: `PairRescaler.needs_gradients`) leaves a pair
whose gradients are ``None`` alone, as the optimizer does, and says so once (a
``RuntimeWarning``); oBAR reads only the factors and rescales every pair.  Under sharding a pair
is rescaled when any rank holds its gradient, and every rank joins the all-reduce whatever its
slices hold.  A pair whose gradient norms are not finite gets factor 1 (left alone).

A state (`PairRescaler.state_dict()`) names the rule's settings and every pair (name and
shapes); its step is checked against the optimizer's own count whatever the order of
``load_state_dict``, ``attach`` and the optimizer's ``load_state_dict``, at the latest before the
first step.  An optimizer that keeps no count (plain SGD) cannot confirm a step > 0: such a
state is refused unless the caller says it resumes with the optimizer (``trust_step=True``).

Subclasses give the rule: `PairRescaler._reads()` (which tensors' norms) and
`PairRescaler._factors()`, plus the per-step coefficients (`_coefficients()`) and the
check of the learning rates (`apply_check()`).
"""

from __future__ import annotations

import abc
import math
import warnings
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.hooks import RemovableHandle

from . import _shard as _dist
from .functional import FactorBuffer, compute_dtype, norms, scale_, use_foreach
from .pairs import FactorPair, check_no_shared_storage

__all__ = ["PairRescaler", "RATE_WARNING"]

RATE_WARNING = 0.1  # a per-step rescaling above this: a RuntimeWarning, once per rescaler
# optimizer -> the rescalers attached to it (weak: neither keeps the other alive)
_HANDLED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class PairRescaler(abc.ABC):
    """A rescaling of LoRA factor pairs before every optimizer step (see the module docstring).

    Args:
        pairs: the [`FactorPair`][lorabar.pairs.FactorPair] s (no tensor in two pairs, no shared
            storage).
        foreach: ``True`` multi-tensor kernels, ``False`` a per-pair loop, ``None`` automatic.
        process_group: the group FSDP (``use_orig_params=True``) shards the factors over;
            DTensor factors (FSDP2) are detected without it.
    """

    mode: str = ""

    def __init__(
        self, pairs: Iterable[FactorPair], *, foreach: bool | None = None, process_group: Any = None
    ) -> None:
        self.pairs: list[FactorPair] = list(pairs)
        if not self.pairs:
            raise ValueError("Invalid pairs: empty (expected at least one FactorPair)")
        seen: dict[int, str] = {}
        for pair in self.pairs:
            if not isinstance(pair, FactorPair):
                raise TypeError(
                    f"Invalid pairs: expected FactorPair items, got {type(pair).__name__}"
                )
            for t in pair.tensors:
                if id(t) in seen:
                    raise ValueError(
                        f"Invalid pairs: a tensor of {pair.name!r} also belongs to {seen[id(t)]!r}"
                    )
                seen[id(t)] = pair.name
        check_no_shared_storage(self.pairs)
        self.foreach = foreach
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
                        "process_group=fsdp_model.process_group so that norms are summed across "
                        "ranks"
                    )
        # Pairs grouped by device, with a reusable factor buffer for steps where all have grads.
        by_device: dict[torch.device, list[int]] = {}
        for i, p in enumerate(self.pairs):
            by_device.setdefault(p.x.device, []).append(i)
        self._by_device: list[tuple[list[int], FactorBuffer]] = [
            (
                idx,
                FactorBuffer(
                    len(idx), compute_dtype([t for i in idx for t in self.pairs[i].tensors]), device
                ),
            )
            for device, idx in by_device.items()
        ]
        self._handle: RemovableHandle | None = None
        self._optimizer: weakref.ref | None = None
        self._groups: list[tuple[int, int]] = []  # (group of x, group of y) per pair
        self._warned_rate = False
        self._warned_grads = False
        self._step_checked = True  # step 0, or a loaded step the optimizer's count confirmed
        self._load_hook: RemovableHandle | None = None

    # ----------------------------------------------------------------- what subclasses give
    @abc.abstractmethod
    def apply_check(self, lrs: Sequence[float]) -> None:
        """Raise ``ValueError`` if these per-pair learning rates cannot be applied."""

    @abc.abstractmethod
    def _coefficients(self, lrs: Sequence[float]) -> list[float] | None:
        """The per-pair coefficients of this step (``None``: nothing to do this step)."""

    @abc.abstractmethod
    def _reads(
        self, xs: list[Tensor], ys: list[Tensor], gx: list[Tensor], gy: list[Tensor]
    ) -> list[Tensor]:
        """The tensors whose squared norms the rule reads; the gradients come first."""

    @abc.abstractmethod
    def _factors(self, stats: Tensor, coeffs: float | Tensor, dtype: torch.dtype) -> Tensor:
        """``2n`` factors (xs, then ys) from the ``stats`` of `_reads()` and the
        coefficients (a float, or ``n`` values on the device)."""

    def _identity(self) -> dict[str, Any]:
        """The settings a saved state must agree with (checked by `load_state_dict()`):
        the rule's own (subclasses add theirs) and the pairs, by name and shapes."""
        names = [p.name for p in self.pairs]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(
                f"Invalid pairs for a state: {len(twice)} names are given to more "
                f"than one pair ({', '.join(map(repr, twice[:3]))}); a state could "
                "not tell them apart: give each FactorPair its own name"
            )
        return {
            "mode": self.mode,
            "pairs": names,
            "pair_shapes": [[list(p.x.shape), list(p.y.shape)] for p in self.pairs],
        }

    @property
    def needs_gradients(self) -> bool:
        """Whether the rule reads the gradients (a pair without them is then left alone)."""
        return True

    def _begin_step(self) -> None:
        """Called once per step before the devices' pairs are rescaled."""

    # ----------------------------------------------------------------- applying
    def apply(self, lr: float | Sequence[float]) -> None:
        """Apply one step with learning rate ``lr`` (one value, or one per pair) and advance ``t``.

        This is what the optimizer hook calls; use it directly when there is no optimizer
        (e.g. hand-written SGD in the theory lab).
        """
        lrs = [lr] * len(self.pairs) if isinstance(lr, int | float) else list(lr)
        if len(lrs) != len(self.pairs):
            raise ValueError(f"Invalid lr: {len(lrs)} values for {len(self.pairs)} pairs")
        self.apply_check(lrs)
        coeffs = self._coefficients(lrs)
        if coeffs is not None:
            self._begin_step()
            for idx, buffer in self._by_device:
                self._rescale(idx, coeffs, buffer)
        self.step += 1

    def _active(self, idx: list[int], buffer: FactorBuffer | None):
        """The pairs to rescale on one device: all of them when sharded (every rank joins the
        collective), else those whose two gradients exist."""
        if self._sharded or not self.needs_gradients:
            return idx, buffer
        keep = [
            i for i in idx if self.pairs[i].x.grad is not None and self.pairs[i].y.grad is not None
        ]
        if len(keep) < len(idx) and not self._warned_grads:
            self._warned_grads = True
            gone = next(self.pairs[i].name for i in idx if i not in keep)
            warnings.warn(
                f"{self.mode}: {len(idx) - len(keep)} of {len(idx)} pairs (first "
                f"{gone!r}) have no gradient at step {self.step}; they are left alone, "
                "as the optimizer leaves them (is the layer in the forward pass? "
                "loss.backward() before optimizer.step()?). Said once.",
                RuntimeWarning,
                stacklevel=5,
            )
        return keep, (buffer if len(keep) == len(idx) else None)

    @torch.no_grad()
    def _rescale(self, idx: list[int], coeffs: list[float], buffer: FactorBuffer) -> None:
        idx, buffer = self._active(idx, buffer)
        if not idx:
            return
        local = _dist.local_tensor
        pairs = [self.pairs[i] for i in idx]
        n = len(pairs)
        xs = [local(p.x) for p in pairs]
        ys = [local(p.y) for p in pairs]
        dtype = (
            buffer.flat.dtype
            if buffer is not None
            else compute_dtype([t for p in pairs for t in p.tensors])
        )
        device = xs[0].device
        empty = torch.zeros(0, dtype=dtype, device=device)
        gx = [local(p.x.grad) if p.x.grad is not None else empty for p in pairs]
        gy = [local(p.y.grad) if p.y.grad is not None else empty for p in pairs]
        foreach = True if self._sharded else use_foreach(xs, self.foreach)
        stats = norms(self._reads(xs, ys, gx, gy), dtype, foreach).square()
        has_grad = None
        if self._sharded and not self.needs_gradients:
            _dist.all_reduce_sum_(stats, self._group)
        elif self._sharded:  # shard contributions (and has-gradient counts) summed over ranks
            present = tuple(p.x.grad is not None and p.y.grad is not None for p in pairs)
            counts = self._has_grad.get(present)
            if counts is None:  # one host-to-device copy per distinct pattern, not per step
                counts = self._has_grad[present] = torch.tensor(present, dtype=dtype).to(device)
            stats = torch.cat((stats, counts))
            _dist.all_reduce_sum_(stats, self._group)
            stats, has_grad = stats[:-n], stats[-n:] > 0
        cs = [coeffs[i] for i in idx]
        coeff: float | Tensor = cs[0]
        if any(v != cs[0] for v in cs):
            coeff = torch.tensor(cs, dtype=torch.float64).to(device=device, dtype=dtype)
        factors = self._factors(stats, coeff, dtype)
        if has_grad is not None:  # no rank holds this pair's gradient: left alone
            factors = factors.masked_fill_(~torch.cat((has_grad, has_grad)), 1.0)
        scale_([*xs, *ys], factors, foreach=foreach, buffer=buffer)

    def _check_rate(self, coeff: float) -> None:
        if self._warned_rate or coeff <= RATE_WARNING:
            return
        self._warned_rate = True
        warnings.warn(
            f"BAR's per-step rescaling alpha_t*lr = {coeff:.3g} exceeds {RATE_WARNING}: a factor "
            f"changes by more than {RATE_WARNING:.0%} per step (at step {self.step}); "
            f"{self.mode} at such a rate drives |B| to ~0 within tens of steps and the factors far "
            "from where the loss put them. The paper's settings give alpha*lr of 1e-4..1e-2; "
            "lower mu0.",
            RuntimeWarning,
            stacklevel=4,
        )

    # ----------------------------------------------------------------- optimizer
    def attach(self, optimizer: torch.optim.Optimizer) -> RemovableHandle:
        """Run before every ``optimizer.step()``; returns a handle whose ``remove()`` detaches it.

        Every factor must be a parameter of ``optimizer``.  When the two factors of a pair sit in
        param groups with different learning rates (LoRA+: ``lr_B = ratio * lr_A``), the pair's
        ``eta`` is their geometric mean ``sqrt(lr_x * lr_y)`` (see `pair_lr()`).  A second
        rescaler over factors that one attached to the same optimizer already handles is
        refused: they would be rescaled twice per step.
        """
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                "Invalid optimizer: expected a torch.optim.Optimizer, got "
                f"{type(optimizer).__name__}"
            )
        if self.attached:
            raise RuntimeError(
                "BAR is already attached to an optimizer; call handle.remove() first"
            )
        group_of: dict[int, int] = {}
        for gi, group in enumerate(optimizer.param_groups):
            for p in group["params"]:
                group_of[id(p)] = gi
        groups = []
        for pair in self.pairs:
            missing = [n for n, t in (("x", pair.x), ("y", pair.y)) if id(t) not in group_of]
            if missing:
                raise ValueError(
                    f"Invalid pairs: factor {'/'.join(missing)} of {pair.name!r} is not a "
                    "parameter "
                    f"of the {type(optimizer).__name__} BAR is attached to"
                )
            groups.append((group_of[id(pair.x)], group_of[id(pair.y)]))
        _check_not_handled(optimizer, self)
        self._groups = groups
        self.apply_check(self._lrs(optimizer))
        self._check_step(optimizer)
        self._handle = optimizer.register_step_pre_hook(self._pre_hook)
        # the optimizer's state loaded after this BAR's: its step checked again then
        self._load_hook = optimizer.register_load_state_dict_post_hook(self._optimizer_loaded)
        self._optimizer = weakref.ref(optimizer)
        _HANDLED.setdefault(optimizer, []).append(weakref.ref(self))
        return self._handle

    @property
    def attached(self) -> bool:
        """Whether a hook registered by `attach()` is still in place."""
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
        trained at the common rate ``sqrt(lr_x lr_y)``, and a rescaling of ``(u, v)`` by
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
        if not self._step_checked:  # the first step after a load: the optimizer's count is due
            self._check_step(optimizer, final=True)
        self.apply(self._lrs(optimizer))

    def _optimizer_loaded(self, optimizer: torch.optim.Optimizer) -> None:
        # only the optimizer this BAR is attached to now (a removed handle leaves this hook on
        # the old one, which then says nothing)
        if self.attached and self._optimizer is not None and self._optimizer() is optimizer:
            self._check_step(optimizer)

    def _check_step(self, optimizer: torch.optim.Optimizer, *, final: bool = False) -> None:
        """The loaded step against the optimizer's count: never ahead of it; confirmed when the
        count is known; refused at the first step (``final``) when it never was."""
        taken = optimizer_step(optimizer, self.pairs) if self.step else None
        if taken is not None and self.step > taken:
            raise ValueError(
                f"Invalid state_dict: step={self.step} is ahead of the optimizer's "
                f"{taken} steps (a BAR state saved after the optimizer's? load "
                "both from the same checkpoint)"
            )
        if taken is not None:
            self._step_checked = True
        elif final and not self._step_checked:
            raise ValueError(
                f"Invalid state_dict: step={self.step} cannot be checked: the "
                f"{type(optimizer).__name__} keeps no step count for these factors (plain SGD, "
                "or its own state was not loaded); load the optimizer's state from the same "
                "checkpoint, or pass load_state_dict(state, trust_step=True) if it resumes too"
            )

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """``{"step": t, "mode": ..., and the settings}`` for exact resumption; pairs by name and
        shapes (pairs named alike cannot be told apart: refused)."""
        return {"step": self.step, **self._identity()}

    def load_state_dict(self, state: dict[str, Any], *, trust_step: bool = False) -> None:
        """Resume from `state_dict()`: every setting that changes the trajectory (the mode,
        the rule's settings -- mu0, schedule, total_steps or rho --, the pairs and their shapes)
        must agree (a key absent from an older state is not checked), and the step may not be
        ahead of the optimizer's.  It is checked whatever the order of calls: here when
        attached, at `attach()`, when the optimizer's state is loaded, and at the latest
        before the first step, where a step > 0 that no count confirmed is refused (an
        optimizer that keeps none, e.g. plain SGD) unless ``trust_step`` (the caller says the
        optimizer resumes from the same checkpoint)."""
        if not isinstance(state, Mapping):
            raise TypeError(
                f"Invalid state_dict: a {type(state).__name__} (expected the dict "
                "that BAR.state_dict() returns)"
            )
        for key, value in self._identity().items():
            if key in state and state[key] != value:
                raise ValueError(
                    f"Invalid state_dict: {key}={state[key]!r} but this BAR has {key}={value!r}"
                )
        step = state.get("step")
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ValueError(f"Invalid state_dict: step={step!r} (expected an int >= 0)")
        had = (self.step, self._step_checked)
        self.step, self._step_checked = step, step == 0 or trust_step
        optimizer = self._optimizer() if self.attached and self._optimizer else None
        try:
            if optimizer is not None:
                self._check_step(optimizer)
        except ValueError:
            self.step, self._step_checked = had
            raise


def optimizer_step(optimizer: torch.optim.Optimizer, pairs: Sequence[FactorPair]) -> int | None:
    """The number of steps ``optimizer`` has taken on the factors (its per-parameter ``step``
    state, as Adam and AdamW keep it), or ``None`` when it keeps no count (plain SGD).  A host
    sync: called when a state is loaded or attached, never in a step."""
    for pair in pairs:
        for t in pair.tensors:
            step = optimizer.state.get(t, {}).get("step")
            if step is not None:
                return int(step)
    return None


def _check_not_handled(optimizer: torch.optim.Optimizer, rescaler: PairRescaler) -> None:
    mine = {id(t) for p in rescaler.pairs for t in p.tensors}
    for ref in _HANDLED.get(optimizer, []):
        other = ref()
        if other is None or other is rescaler or not other.attached:
            continue
        shared = [p.name for p in other.pairs if {id(p.x), id(p.y)} & mine]
        if shared:
            raise ValueError(
                f"Invalid pairs: {len(shared)} pair(s) (e.g. {shared[0]!r}) are already handled "
                f"by another BAR attached to this {type(optimizer).__name__} ({other!r}); a second "
                "BAR would rescale them twice per step. Remove the first one's handle, or give "
                "each BAR its own pairs"
            )
