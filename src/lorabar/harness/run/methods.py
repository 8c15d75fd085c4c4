"""The method registry: a method is one entry that turns a model into a `Stepper`.

Every training path of lorabar (``lorabar finetune``, ``finetune-lm``, ``grid``, ``demo``,
``bench``, ``benchmarks/bench_core.py``) steps through a `Stepper` built here, so a new
method is one [`Method`][lorabar.harness.run.registry.Method] entry with its builder (added at
run time with `register_method()`).  One step of each (``loss_fn`` runs under the runtime's
autocast; fp16 goes through a ``GradScaler``):

```
lora, full:  loss.backward(); optimizer.step()                      (AdamW)
nbar, obar:  the same, with lorabar.BAR attached as a step pre-hook   (AdamW + BAR)
sbar:        the same with lorabar.SBAR(rho): SAM's drift of B, one pass
sam:         lorabar.sam_step (one process) or
             lorabar.distributed.ddp_sam_step (under DDP)           (SAM over AdamW)
             perturbing the LoRA factors only (a head: a rho = 0 group)
loraplus:    AdamW with B's lr = ratio * A's (PEFT's create_loraplus_optimizer)
flatlora:    forward and backward at W + eps (lorabar.flat.FlatLoRA, sigma ~ rho)
prefix:      AdamW on PEFT's prefix embeddings (no LoRA pairs)
zeroshot:    no training (the pretrained model, or the probe head alone, evaluated)
```

``lora``/``nbar``/``obar``/``sam`` train LoRA adapters (and a task head where the task trains
one); ``full`` trains every parameter of a model without adapters.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ... import BAR, SAM, SBAR, sam_step
from ...sam_loop import scaled_backward
from ...flat import FlatLoRA
from .config import RunConfig
from .registry import METHODS, Method, check_bar_rate
from .runtime import Runtime

__all__ = [
    "METHODS",
    "Method",
    "StepContext",
    "Stepper",
    "adamw_stepper",
    "attach_rescaler",
    "check_bar_rate",
    "flatlora_stepper",
    "loraplus_stepper",
    "make_stepper",
    "nbar_stepper",
    "obar_stepper",
    "register_method",
    "sam_stepper",
    "sbar_stepper",
]


@dataclass(frozen=True)
class StepContext:
    """What a method needs to build its stepper: the model and its parts, and the run's config.

    A builder reads the run's settings from ``config`` by the config's own names, with the
    config's defaults: ``config.lr``, ``.weight_decay``, ``.steps``, ``.seed`` and what its
    registry entry reads (``.rho``, ``.mu0``, ``.schedule``, ``.sam_perturbation``,
    ``.loraplus_ratio``, ``.bar``).  Nothing is copied into the context, so a setting reaches
    the stepper under one name and one default; the method is ``config.method``."""

    model: torch.nn.Module  # the module to call (DDP-wrapped under torchrun)
    params: list[Tensor]  # the trainable parameters
    pairs: list  # the LoRA pairs (lorabar.FactorPair)
    loss_fn: Callable[[Any], Tensor]  # batch -> mean loss (autocast is added by the stepper)
    runtime: Runtime
    config: RunConfig  # the run's config (an EncoderConfig, an LMConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.config, RunConfig):
            raise TypeError(
                f"Invalid config: {type(self.config).__name__} (a run config: "
                "lorabar.harness.run.config.EncoderConfig or LMConfig)"
            )


class Stepper:
    """One optimizer step per `step()` call; ``optimizer`` is the base optimizer (put LR
    schedulers on it).  ``step(batch, observe)`` returns the first-pass loss (detached) and
    calls ``observe(grad_scale)`` while ``.grad`` holds the gradient at the current weights
    (multiplied by ``grad_scale`` under fp16), for logging."""

    def __init__(
        self,
        ctx: StepContext,
        optimizer: torch.optim.Optimizer,
        sam: SAM | None = None,
        flat: FlatLoRA | None = None,
    ) -> None:
        self.ctx = ctx
        self.optimizer = optimizer
        self.sam = sam
        self.flat = flat  # forward and backward at the perturbed weights
        self.scaler = ctx.runtime.grad_scaler()
        self.info: dict = {}  # what the method adds to a run's record (e.g. "sam")

    def _loss(self, batch: Any) -> Tensor:
        with self.ctx.runtime.autocast():
            return self.ctx.loss_fn(batch)

    def _grad_scale(self) -> float:
        return float(self.scaler.get_scale()) if self.scaler is not None else 1.0

    def step(self, batch: Any, observe: Callable[[float], None] | None = None) -> Tensor:
        hook = None if observe is None else (lambda: observe(self._grad_scale()))
        if self.sam is not None:
            loss = self._sam_step(batch, hook)
        else:
            with self.flat.perturbed() if self.flat is not None else nullcontext():
                loss = self._loss(batch)
                scaled_backward(loss, self.scaler)
            if self.flat is not None:
                self.flat.advance()
            if hook is not None:
                hook()
            if self.scaler is not None:
                self.scaler.step(self.optimizer)
            else:
                self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            loss = loss.detach()
        if self.scaler is not None:
            self.scaler.update()
        return loss

    def _sam_step(self, batch: Any, hook: Callable[[], None] | None) -> Tensor:
        model = self.ctx.model
        if isinstance(model, torch.nn.parallel.DistributedDataParallel):
            # the first pass all-reduces ("sync") or not ("per_rank": m-sharpness, m = ranks)
            from ...distributed import ddp_sam_step

            return ddp_sam_step(
                model,
                self.sam,
                self._loss,
                [batch],
                perturbation=self.ctx.config.sam_perturbation,
                scaler=self.scaler,
                after_first_backward=hook,
            )
        return sam_step(self.sam, self._loss, batch, scaler=self.scaler, after_first_backward=hook)


def adamw_stepper(ctx: StepContext) -> Stepper:
    """The plain LoRA stepper (AdamW over ``ctx.params``): what most builders start from."""
    c = ctx.config
    return Stepper(ctx, torch.optim.AdamW(ctx.params, lr=c.lr, weight_decay=c.weight_decay))


def attach_rescaler(mode: str, ctx: StepContext, optimizer: torch.optim.Optimizer) -> dict:
    """Attach the rescaling ``mode`` (``obar``, ``nbar``: `lorabar.BAR`; ``sbar``:
    `lorabar.SBAR`) over ``ctx.pairs`` to ``optimizer``; returns its settings (for a run's
    record).  The one place each rescaling method's settings reach its object."""
    c = ctx.config
    if mode == "sbar":
        SBAR(ctx.pairs, rho=c.rho).attach(optimizer)
        return {"mode": "sbar", "rho": c.rho}
    BAR(ctx.pairs, mode=mode, mu0=c.mu0, schedule=c.schedule, total_steps=c.steps).attach(optimizer)
    return {"mode": mode, "mu0": c.mu0, "schedule": c.schedule}


def _rescaled(mode: str) -> Callable[[StepContext], Stepper]:
    def build(ctx: StepContext) -> Stepper:
        stepper = adamw_stepper(ctx)
        attach_rescaler(mode, ctx, stepper.optimizer)
        return stepper

    build.__name__ = build.__qualname__ = f"{mode}_stepper"
    build.__doc__ = f"AdamW with the rescaling {mode!r} attached (`attach_rescaler()`)."
    return build


obar_stepper = _rescaled("obar")
nbar_stepper = _rescaled("nbar")
sbar_stepper = _rescaled("sbar")


def loraplus_stepper(ctx: StepContext) -> Stepper:
    """LoRA+ (Hayou et al., ICML 2024) through PEFT's ``create_loraplus_optimizer``: AdamW with
    ``lr`` for A (and 2-D non-LoRA weights) and ``ratio * lr`` for B (and 1-D parameters)."""
    from peft.optimizers import create_loraplus_optimizer

    c = ctx.config
    module = getattr(ctx.model, "module", ctx.model)  # under DDP: the wrapped model
    opt = create_loraplus_optimizer(
        module,
        torch.optim.AdamW,
        lr=c.lr,
        loraplus_lr_ratio=c.loraplus_ratio,
        loraplus_weight_decay=c.weight_decay,
    )
    covered = {id(p) for g in opt.param_groups for p in g["params"]}
    if covered != {id(p) for p in ctx.params}:
        raise ValueError(
            "Invalid loraplus optimizer: PEFT's parameter groups do not cover "
            "exactly the trainable parameters"
        )
    stepper = Stepper(ctx, opt)
    stepper.info = {
        "loraplus": {
            "ratio": c.loraplus_ratio,
            "lr_B_params": sum(
                p.numel() for g in opt.param_groups if g["lr"] != c.lr for p in g["params"]
            ),
        }
    }
    if c.bar != "none":  # each pair's rate: sqrt(lr_A lr_B) (BAR.pair_lr)
        stepper.info["loraplus"]["bar"] = attach_rescaler(c.bar, ctx, opt)
    return stepper


def flatlora_stepper(ctx: StepContext) -> Stepper:
    """Flat-LoRA: forward and backward at randomly perturbed weights (`lorabar.flat`)."""
    c = ctx.config
    module = getattr(ctx.model, "module", ctx.model)
    flat = FlatLoRA.from_peft(module, rho=c.rho, total_steps=c.steps, seed=c.seed)
    stepper = Stepper(
        ctx, torch.optim.AdamW(ctx.params, lr=c.lr, weight_decay=c.weight_decay), flat=flat
    )
    perturbed = sum(layer.weight.numel() for layer in flat.layers)
    stepper.info = {
        "flatlora": {"rho": c.rho, "layers": len(flat.layers), "perturbed_params": perturbed}
    }
    return stepper


def sam_stepper(ctx: StepContext) -> Stepper:
    """LoRA-SAM (paper Alg. 1 on the LoRA factors): SAM perturbs the LoRA factors only; any
    other trainable parameter (a task head) is stepped by AdamW with the second-pass gradient
    and never perturbed (a ``rho = 0`` group)."""
    factors = {id(t) for pair in ctx.pairs for t in pair.tensors}
    lora = [p for p in ctx.params if id(p) in factors] if factors else list(ctx.params)
    rest = [p for p in ctx.params if id(p) not in factors] if factors else []
    groups = [{"params": lora}] + ([{"params": rest, "rho": 0.0}] if rest else [])
    c = ctx.config
    sam = SAM(groups, torch.optim.AdamW, rho=c.rho, lr=c.lr, weight_decay=c.weight_decay)
    stepper = Stepper(ctx, sam.base_optimizer, sam=sam)
    perturbed = sum(p.numel() for g in sam.param_groups if g["rho"] > 0 for p in g["params"])
    stepper.info = {
        "sam": {
            "rho": c.rho,
            "perturbed_params": perturbed,
            "unperturbed_params": sum(p.numel() for p in ctx.params) - perturbed,
            "perturbation": c.sam_perturbation,
        }
    }
    return stepper


def register_method(method: Method) -> None:
    """Add a method: its registry entry (what it reads, its label, its default tuning grid, its
    builder -- ``"module:function"`` or the function itself).
    Everything else -- the run key, ``--method`` choices, dev selection's columns,
    ``compare``'s seed stage, the report -- asks the registry.  The settings it reads
    (``method.hparams``) must be config fields; a name already taken is refused.  See the
    development guide's worked example."""
    from .config import CONFIGS

    if method.name in METHODS:
        raise ValueError(f"Invalid method: {method.name!r} is already registered")
    fields = set().union(*(c.field_names() for c in CONFIGS.values()))
    unknown = [h for h in method.hparams if h not in fields]
    if unknown:
        raise ValueError(f"Invalid method {method.name!r}: hparams {unknown} are not config fields")
    METHODS[method.name] = method


def make_stepper(ctx: StepContext) -> Stepper:
    """The `Stepper` of the run's method (``ctx.config.method``, a key of `METHODS`): its
    entry's builder."""
    import importlib

    method = ctx.config.method
    if method not in METHODS:
        raise ValueError(f"Invalid method: {method!r} (expected one of {tuple(METHODS)})")
    builder = METHODS[method].builder
    if builder is None:
        raise ValueError(f"Invalid method: {method!r} does not train")
    if isinstance(builder, str):
        module, name = builder.split(":")
        builder = getattr(importlib.import_module(module), name)
    return builder(ctx)
