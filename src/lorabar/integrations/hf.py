"""Hugging Face ``Trainer`` integration.

Three ways to use BAR / SAM with the Trainer:

1. Build the optimizer yourself and attach BAR, then ``Trainer(optimizers=(opt, scheduler))``
   (see the README).  Nothing here is needed.
2. :class:`BARCallback`: ``Trainer(..., callbacks=[BARCallback(mode="nbar", mu0=...)])`` attaches
   BAR to the optimizer the Trainer builds itself (at ``on_train_begin``), with ``total_steps`` =
   the Trainer's ``max_steps``.  Every time the Trainer logs (``logging_steps``) it adds
   ``bar/mean_abs_B``, ``bar/max_abs_B`` and ``bar/step`` to the logs, so they land in
   ``trainer.state.log_history`` and, with :func:`add_callback_first`, in the ``report_to``
   integrations (TensorBoard, W&B, ...) too.  BAR changes weights only inside the optimizer's
   step pre-hook: callbacks such as ``on_pre_optimizer_step`` also fire on fp16 steps that the
   scaler then skips.
3. :class:`SAMTrainer`: a Trainer whose ``training_step`` does SAM's two passes; the Trainer then
   clips and steps ``sam.base_optimizer`` as usual.  With gradient accumulation every micro-batch
   gets its own perturbation (m-sharpness with m = accumulation steps, paper eq. (38)).  Its logs
   carry ``sam/perturbation_norm``, the mean ``|e|`` since the last log.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import Trainer, TrainerCallback

from ..bar import BAR
from ..metrics import balancedness
from ..pairs import FactorPair, find_lora_pairs
from ..sam import SAM

__all__ = ["BARCallback", "SAMTrainer", "add_callback_first", "unwrap_optimizer"]


def unwrap_optimizer(optimizer: Any) -> torch.optim.Optimizer:
    """The torch optimizer inside accelerate's ``AcceleratedOptimizer`` wrappers."""
    seen = 0
    while not type(optimizer).__module__.startswith("torch.") and hasattr(optimizer, "optimizer"):
        optimizer = optimizer.optimizer
        seen += 1
        if seen > 8:  # pragma: no cover - defensive
            break
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"Invalid optimizer: {type(optimizer).__name__} is not a torch optimizer")
    return optimizer


def add_callback_first(trainer: Trainer, callback: TrainerCallback) -> TrainerCallback:
    """Put ``callback`` first in ``trainer``'s callbacks, so that what it adds to the logs in
    ``on_log`` reaches the ``report_to`` integrations (the Trainer creates those before the
    callbacks you pass it, and calls ``on_log`` in that order)."""
    handler = trainer.callback_handler
    if callback in handler.callbacks:
        handler.callbacks.remove(callback)
    handler.callbacks.insert(0, callback)
    return callback


class BARCallback(TrainerCallback):
    """Attach BAR to the Trainer's optimizer and log balancedness.

    Args:
        mode, mu0, schedule: as for :class:`lorabar.BAR` (``total_steps`` is the Trainer's).
        rho, norm: sBAR's (``mode="sbar"``), as for :class:`lorabar.BAR`.
        pairs: explicit pairs; default :func:`lorabar.find_lora_pairs` on the Trainer's model.
        log_every: also record mean/max |B| in :attr:`history` every this many optimizer steps
            (0: never); the Trainer's own logs get them at every logging step regardless.
    """

    def __init__(self, mode: str = "nbar", mu0: float = 0.5, schedule: str = "cosine",
                 pairs: list[FactorPair] | None = None, log_every: int = 50, *,
                 rho: float | None = None, norm: str = "pair") -> None:
        self.mode, self.mu0, self.schedule = mode, mu0, schedule
        self.rho, self.norm = rho, norm
        self.pairs = pairs
        self.log_every = log_every
        self.bar: BAR | None = None
        self.history: list[dict] = []
        self._handle = None

    def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
        if optimizer is None:
            raise RuntimeError("BARCallback: the Trainer passed no optimizer to on_train_begin")
        pairs = self.pairs if self.pairs is not None else find_lora_pairs(model)
        self.bar = BAR(pairs, mode=self.mode, mu0=self.mu0, schedule=self.schedule,
                       total_steps=max(1, state.max_steps), rho=self.rho, norm=self.norm)
        self._handle = self.bar.attach(unwrap_optimizer(optimizer))

    def _stats(self) -> dict:
        assert self.bar is not None
        stats = balancedness(self.bar.pairs)
        return {"bar/mean_abs_B": stats.mean_abs_B.item(), "bar/max_abs_B": stats.max_abs_B.item(),
                "bar/step": self.bar.step}

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None and self.log_every and state.global_step % self.log_every == 0:
            s = self._stats()
            self.history.append({"step": state.global_step, "bar_step": s["bar/step"],
                                 "mean_abs_B": s["bar/mean_abs_B"], "max_abs_B": s["bar/max_abs_B"]})

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is None or logs is None:
            return
        stats = self._stats()
        logs.update(stats)  # seen by the callbacks after this one
        # The Trainer appended its copy of these logs to log_history before calling on_log.
        last = state.log_history[-1] if state.log_history else None
        if last is not None and last.get("step") == state.global_step:
            last.update(stats)

    def on_train_end(self, args, state, control, **kwargs):
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


class SAMTrainer(Trainer):
    """A ``Trainer`` that performs SAM's two forward/backward passes in ``training_step``.

    Pass ``sam=lorabar.SAM(params, torch.optim.AdamW, rho=..., lr=...)``; the Trainer is given
    ``sam.base_optimizer`` to step (and any scheduler you pass with it).
    """

    def __init__(self, *args: Any, sam: SAM, **kwargs: Any) -> None:
        if not isinstance(sam, SAM):
            raise TypeError(f"Invalid sam: expected lorabar.SAM, got {type(sam).__name__}")
        optimizers = kwargs.pop("optimizers", (None, None))
        if optimizers[0] is not None and optimizers[0] is not sam.base_optimizer:
            raise ValueError("Invalid optimizers: pass (sam.base_optimizer, scheduler) or omit it")
        kwargs["optimizers"] = (sam.base_optimizer, optimizers[1])
        super().__init__(*args, **kwargs)
        self.sam = sam
        self._eps_sum: torch.Tensor | None = None
        self._eps_count = 0

    def training_step(self, model, inputs, num_items_in_batch=None):
        params = [p for g in self.sam.param_groups for p in g["params"]]
        accumulated = [p.grad for p in params]  # earlier micro-batches of this step
        for p in params:
            p.grad = None
        # Pass 1 at w: only the direction matters (e is invariant to loss scaling).
        super().training_step(model, inputs, num_items_in_batch)
        self.sam.first_step(zero_grad=True)
        eps = self.sam.perturbation_norm  # a tensor: no host sync until the next log
        if eps is not None:
            self._eps_sum = eps.detach() if self._eps_sum is None else self._eps_sum + eps
            self._eps_count += 1
        # Pass 2 at w + e: this gradient is what the base optimizer steps with.
        loss = super().training_step(model, inputs, num_items_in_batch)
        self.sam.unperturb()
        with torch.no_grad():
            for p, g in zip(params, accumulated):
                if g is not None:
                    p.grad = g if p.grad is None else p.grad.add_(g)
        return loss

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        """Adds ``sam/perturbation_norm`` (mean |e| since the last log) to training logs."""
        if self._eps_count and "loss" in logs:
            logs["sam/perturbation_norm"] = (self._eps_sum / self._eps_count).item()
            self._eps_sum, self._eps_count = None, 0
        super().log(logs, *args, **kwargs)
