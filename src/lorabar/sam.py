"""Sharpness-aware minimization (SAM), API-compatible with davda54/sam, AMP- and accumulation-aware.

Paper Alg. 1 (Foret et al., 2021), over the parameters SAM is given (LoRA-SAM: only the trainable
ones), with ``g`` the gradient on the minibatch and the norm global over those parameters:

```
e   = rho * T^2 g / |T g|        T = diag(|w|) for ASAM (adaptive=True), identity otherwise
w  <- w + e                      first_step():  climb to the perturbed point
g~  = grad L(w + e)              (the caller runs the second forward/backward)
w  <- w - e; base_step(g~)       second_step(): restore w exactly, step the base optimizer
```

``|g| = 0`` gives ``e = 0`` (no division by zero), and so does a gradient with an inf/NaN
(``|g|`` not finite): ``second_step`` then restores and steps as usual (with a ``GradScaler`` the
step is skipped).  Nothing synchronizes with the host.

Call sequences (``opt = SAM(params, torch.optim.AdamW, rho=0.05, lr=3e-4)``):

* plain / bf16 autocast (parameters stay float32):

```
with torch.autocast(device, dtype=torch.bfloat16): loss_fn(batch).backward()
opt.first_step(zero_grad=True)
with torch.autocast(device, dtype=torch.bfloat16): loss_fn(batch).backward()
opt.second_step(zero_grad=True)
```

* fp16 with ``scaler = torch.amp.GradScaler(device)`` -- no unscaling is needed before the
  perturbation because ``e`` is invariant to the loss scale; an inf/NaN in either pass skips the
  whole step and lowers the scale:

  ```
  scaler.scale(loss_fn(batch)).backward()
  opt.first_step(zero_grad=True)
  scaler.scale(loss_fn(batch)).backward()
  opt.second_step(zero_grad=True, scaler=scaler)   # calls scaler.step(opt.base_optimizer)
  scaler.update()
  ```

* gradient accumulation over k micro-batches (equals one batch k times larger):

```
for mb in micro_batches: (loss_fn(mb) / k).backward()
opt.first_step(zero_grad=True)
for mb in micro_batches: (loss_fn(mb) / k).backward()
opt.second_step(zero_grad=True)
```

* one call that does all of it, with m-sharpness (paper eq. (38)):
  [`sam_step()`][lorabar.sam_loop.sam_step].

LR schedulers: build them on ``opt.base_optimizer`` (param groups are shared, so the learning
rates are the same objects); ``state_dict()`` is the base optimizer's, SAM's ``rho``/``adaptive``
included in its param groups.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from . import _shard as _dist
from . import _validate as _v
from .functional import squared_norms

__all__ = ["SAM"]


class SAM(torch.optim.Optimizer):
    """SAM / ASAM wrapping ``base_optimizer`` (a class, e.g. ``torch.optim.AdamW``).

    Args:
        params: the parameters to perturb and train (iterable of tensors or param groups).
            A group with ``rho=0`` is trained by the base optimizer but never perturbed, and
            its gradient does not count in ``|g|``: LoRA-SAM with a trainable head is
            ``[{"params": lora_factors}, {"params": head, "rho": 0.0}]``.
        base_optimizer: the optimizer class that takes the step; built as
            ``base_optimizer(self.param_groups, **kwargs)``.
        rho: perturbation radius, ``>= 0``.
        adaptive: ASAM (Kwon et al., 2021): scale the perturbation by ``|w|``.
        process_group: the group FSDP (``use_orig_params=True``) shards the parameters over;
            the gradient norm is then summed across it.  DTensor parameters (FSDP2) are
            detected.  Not needed under DDP (see
            [`lorabar.distributed.ddp_sam_step()`][lorabar.distributed.ddp_sam_step]).
        **kwargs: passed to ``base_optimizer`` (``lr``, ``weight_decay``, ...).
    """

    def __init__(
        self,
        params: Any,
        base_optimizer: type[torch.optim.Optimizer] | Callable[..., torch.optim.Optimizer],
        rho: float = 0.05,
        adaptive: bool = False,
        *,
        process_group: Any = None,
        **kwargs: Any,
    ) -> None:
        _v.number("rho", rho)
        _v.boolean("adaptive", adaptive)
        if isinstance(base_optimizer, torch.optim.Optimizer) or not callable(base_optimizer):
            what = f"a {type(base_optimizer).__name__} instance"
            raise TypeError(
                f"Invalid base_optimizer: {what} (pass the class, e.g. "
                "torch.optim.AdamW, and its arguments as keywords)"
            )
        super().__init__(params, dict(rho=rho, adaptive=adaptive, **kwargs))
        for i, group in enumerate(self.param_groups):
            _check_group(group, i)
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.defaults.update(self.base_optimizer.defaults)
        self._backup: dict[Tensor, Tensor] = {}  # parameter -> its value before first_step
        self._perturbed: list[tuple[Tensor, Tensor]] = []  # (this rank's slice, its backup)
        self._in_step = False
        self._sharded, self._group = _dist.resolve_group(
            [p for g in self.param_groups for p in g["params"]], process_group
        )
        self._first_finite: Tensor | None = None
        self._group_of: dict[Tensor, dict] = {}
        self._e_norm: Tensor | None = None

    # param_groups and state are the base optimizer's, always: a wrapper that reloads the base
    # optimizer's state (accelerate's AcceleratedOptimizer does, under the HF Trainer) replaces
    # its lists, and SAM must see the learning rates the scheduler sets on them.
    @property
    def param_groups(self) -> list[dict[str, Any]]:  # type: ignore[override]
        base = self.__dict__.get("base_optimizer")
        return base.param_groups if base is not None else self.__dict__["_own_groups"]

    @param_groups.setter
    def param_groups(self, groups: list[dict[str, Any]]) -> None:
        base = self.__dict__.get("base_optimizer")
        if base is not None:
            base.param_groups = groups
        else:
            self.__dict__["_own_groups"] = groups

    @property
    def state(self) -> Any:  # type: ignore[override]
        base = self.__dict__.get("base_optimizer")
        return base.state if base is not None else self.__dict__["_own_state"]

    @state.setter
    def state(self, value: Any) -> None:
        base = self.__dict__.get("base_optimizer")
        if base is not None:
            base.state = value
        else:
            self.__dict__["_own_state"] = value

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """As `torch.optim.Optimizer.add_param_group()`, with ``rho`` checked (and the group
        added to the base optimizer, which steps it)."""
        if "base_optimizer" not in self.__dict__:
            super().add_param_group(param_group)
            return
        _check_group({"rho": self.defaults["rho"], **param_group}, len(self.param_groups))
        self.base_optimizer.add_param_group(
            {"rho": self.defaults["rho"], "adaptive": self.defaults["adaptive"], **param_group}
        )

    @property
    def first_pass_finite(self) -> Tensor | None:
        """Whether the gradient of the last `first_step()` was finite: a 0-dim bool tensor on
        the device (no host sync), ``None`` outside a step.  With a ``GradScaler``,
        `second_step()` skips the step when it is false.  A caller that runs several first
        passes into one step (m-sharpness, per-rank perturbations under DDP) combines them and
        sets the result back (``sam.first_pass_finite = a & b``)."""
        return self._first_finite

    @first_pass_finite.setter
    def first_pass_finite(self, value: Tensor | None) -> None:
        if value is not None and not isinstance(value, Tensor):
            raise TypeError(
                f"Invalid first_pass_finite: {value!r} (expected a bool tensor or None)"
            )
        self._first_finite = value

    @property
    def perturbation_norm(self) -> Tensor | None:
        """``|e|`` of the last `first_step()` as a 0-dim tensor (no host sync; ``rho`` for
        plain SAM unless the gradient was zero or not finite), ``None`` before the first one."""
        return self._e_norm

    # ---------------------------------------------------------------- helpers
    def _params_with_grad(self) -> list[tuple[Tensor, dict]]:
        return [(p, g) for g in self.param_groups for p in g["params"] if p.grad is not None]

    @torch.no_grad()
    def _grad_norm(self, params: Sequence[Tensor]) -> Tensor:
        """Global norm of ``T g`` over ``params`` in float32 or wider (one multi-tensor pass);
        with sharded parameters the local squared norms are summed across the shard group."""
        local = _dist.local_tensor
        scaled = []
        for p in params:
            adaptive = self._group_of[p]["adaptive"]
            g, w = local(p.grad), local(p)
            scaled.append(g * w.abs() if adaptive else g)
        device = local(self.param_groups[0]["params"][0]).device
        return self._global_norm(scaled, device)

    def _global_norm(self, tensors: Sequence[Tensor], device: torch.device) -> Tensor:
        """``sqrt(sum |t|^2)`` over ``tensors`` (any devices) and, if sharded, over the ranks."""
        by_device: dict[torch.device, list[Tensor]] = {}
        for t in tensors:
            by_device.setdefault(t.device, []).append(t)
        sq = [squared_norms(ts).sum().to(device) for ts in by_device.values()]
        total = torch.stack(sq).sum() if sq else torch.zeros((), device=device)
        if self._sharded:
            _dist.all_reduce_sum_(total, self._group)
        return total.sqrt()

    # ---------------------------------------------------------------- SAM steps
    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Move to ``w + e(w)`` using the current gradients (which may be loss-scaled)."""
        if self._in_step:
            raise RuntimeError("first_step() called twice without second_step() in between")
        with_grad = self._params_with_grad()
        if not with_grad and not self._sharded:  # sharded: the norm is a collective, always join
            raise RuntimeError(
                "SAM.first_step(): no parameter has a gradient; run the first forward and "
                "backward pass (loss.backward()) before first_step()"
            )
        self._group_of = {p: g for p, g in with_grad}
        # groups with rho = 0 are stepped, never perturbed, and do not count in |g|
        params = [p for p, g in with_grad if g["rho"] > 0]
        norm = self._grad_norm(params)
        finite = torch.isfinite(norm)
        self._first_finite = finite
        safe = torch.where(finite & (norm > 0), norm, torch.ones_like(norm))
        inv = torch.where(finite & (norm > 0), 1.0 / safe, torch.zeros_like(norm))
        local = _dist.local_tensor
        perturbed = self._back_up(params)
        perturbed_groups = [g for g in self.param_groups if g["rho"] > 0]
        rhos = {g["rho"] for g in perturbed_groups}
        # |e| = rho |g| / |g| = rho, or 0, needs no second norm pass -- unless a factor is stored
        # below fp32, where e is rounded (or underflows) on its way into the weights
        uniform = (
            len(rhos) <= 1
            and not any(g["adaptive"] for g in perturbed_groups)
            and all(local(p).dtype in (torch.float32, torch.float64) for p in params)
        )
        for group in perturbed_groups:
            _perturb_group(group, inv)
        if uniform:
            moved = finite & (norm > 0)
            self._e_norm = torch.where(moved, float(next(iter(rhos), 0.0)), 0.0).float()
        else:  # the norm of the move as applied: w + e(w) - w in the parameters' dtype
            moves = [w.float() - b.float() for w, b in perturbed]
            self._e_norm = self._global_norm(moves, norm.device)
        self._perturbed = perturbed
        self._in_step = True
        if zero_grad:
            self.zero_grad()

    def _back_up(self, params: list[Tensor]) -> list[tuple[Tensor, Tensor]]:
        """``[(w, a copy of w)]`` of the (local shards of the) parameters about to move, the
        copies in buffers kept from step to step."""
        out = []
        for p in params:
            w = _dist.local_tensor(p)
            backup = self._backup.get(p)
            if backup is None or backup.shape != w.shape or backup.dtype != w.dtype:
                backup = self._backup[p] = torch.empty_like(w)
            backup.copy_(w)
            out.append((w, backup))
        return out

    @torch.no_grad()
    def unperturb(self) -> None:
        """Put the parameters back to their values before `first_step()` (bit-exact),
        keeping the gradients of the perturbed point; for frameworks that step the base
        optimizer themselves (see
        [`lorabar.integrations.hf.SAMTrainer`][lorabar.integrations.hf.SAMTrainer])."""
        self._restore()

    @torch.no_grad()
    def _restore(self) -> None:
        """Put the parameters back to their values before `first_step()` (bit-exact)."""
        if not self._in_step:
            raise RuntimeError("second_step() called without first_step()")
        if self._perturbed:
            torch._foreach_copy_([w for w, _ in self._perturbed], [b for _, b in self._perturbed])
        self._perturbed = []
        self._in_step = False

    @torch.no_grad()
    def base_step(self, scaler: Any = None) -> None:
        """The base optimizer's step with the gradients ``.grad`` holds now (after
        `unperturb()`); through ``scaler.step`` when given, and then skipped when the first
        pass or these gradients hold an inf/NaN.  `second_step()` is ``unperturb()`` and
        this; m-sharpness (`sam_step()`) and DDP
        ([`lorabar.distributed.ddp_sam_step()`][lorabar.distributed.ddp_sam_step])
        average gradients in between."""
        if scaler is not None and self._first_finite is not None:
            # An inf/NaN in the first pass must skip this step too: poison the gradients so that
            # the scaler sees it, skips base_optimizer.step() and lowers the scale.
            poison = torch.where(self._first_finite, 0.0, float("nan"))
            grads = [
                _dist.local_tensor(p.grad)
                for g in self.param_groups
                for p in g["params"]
                if p.grad is not None
            ]
            if grads:
                torch._foreach_add_(grads, poison.to(grads[0].dtype))
        if scaler is not None:
            scaler.step(self.base_optimizer)
        else:
            self.base_optimizer.step()
        self._first_finite = None

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False, scaler: Any = None) -> None:
        """Restore ``w`` and take the base step with the gradients at ``w + e``.

        With ``scaler`` (a ``torch.amp.GradScaler``) the step goes through ``scaler.step`` and is
        skipped when either pass produced inf/NaN; call ``scaler.update()`` afterwards.
        """
        self._restore()
        self.base_step(scaler)
        if zero_grad:
            self.zero_grad()

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """One SAM step; ``closure`` must run a full forward and backward pass (no zero_grad).

        Expects the gradients of the first pass to be present already (davda54/sam semantics).
        Returns the closure's loss at the perturbed point.
        """
        if closure is None:
            raise ValueError(
                "Invalid closure: None (SAM needs a closure that runs forward and backward)"
            )
        self.first_step(zero_grad=True)
        with torch.enable_grad():
            loss = closure()
        self.second_step()
        return loss

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return self.base_optimizer.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.base_optimizer.load_state_dict(state_dict)
        for i, group in enumerate(self.param_groups):
            _check_group(group, i)


def _perturb_group(group: dict[str, Any], inv: Tensor) -> None:
    """``w += e``, ``e = rho g / |g|`` (ASAM: times ``w^2``) for the group's parameters with a
    gradient, ``inv = 1 / |g|`` (0 where ``|g|`` is 0 or not finite)."""
    local = _dist.local_tensor
    members = [local(p) for p in group["params"] if p.grad is not None]
    if not members:
        return
    # e = rho g / |g| in fp32 whatever the parameters' dtype: a loss-scaled |g| makes
    # rho / |g| tiny, which fp16 would flush to 0
    wide = torch.float64 if any(m.dtype == torch.float64 for m in members) else torch.float32
    grads = [local(p.grad).to(wide) for p in group["params"] if p.grad is not None]
    e = torch._foreach_mul(grads, (inv * group["rho"]).to(wide))
    for t in e:  # an inf/NaN gradient: scale is 0 but 0 * inf = NaN; perturb nothing
        torch.nan_to_num_(t, nan=0.0, posinf=0.0, neginf=0.0)
    if group["adaptive"]:
        torch._foreach_mul_(e, [m.to(wide) * m.to(wide) for m in members])
    applied = [t if t.dtype == m.dtype else t.to(m.dtype) for t, m in zip(e, members)]
    torch._foreach_add_(members, applied)  # climb to the local maximum w + e(w)


def _check_group(group: Mapping[str, Any], index: int) -> None:
    """A param group's ``rho`` must be a finite number >= 0 (0: stepped, never perturbed)."""
    _v.number("rho", group.get("rho"), suffix=f" in param group {index}")
