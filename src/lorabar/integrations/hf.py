"""Hugging Face ``Trainer`` integration.

Three ways to use BAR / SAM with the Trainer:

1. Build the optimizer yourself and attach BAR, then ``Trainer(optimizers=(opt, scheduler))``
   (see the README).  Nothing here is needed.
2. `BARCallback`: ``Trainer(..., callbacks=[BARCallback(mode="nbar", mu0=...)])`` attaches
   BAR to the optimizer the Trainer builds itself (at ``on_train_begin``), with ``total_steps`` =
   the Trainer's ``max_steps``.  Every time the Trainer logs (``logging_steps``) it adds
   ``bar/mean_abs_B``, ``bar/max_abs_B`` and ``bar/step`` to the logs, so they land in
   ``trainer.state.log_history`` and in every ``report_to`` integration (TensorBoard, W&B, ...);
   BAR's state travels with the Trainer's checkpoints, so ``resume_from_checkpoint`` is exact.  BAR
   changes weights only inside the optimizer's
   step pre-hook: callbacks such as ``on_pre_optimizer_step`` also fire on fp16 steps that the
   scaler then skips.
3. `SAMTrainer`: a Trainer whose ``training_step`` does SAM's two passes; the Trainer then
   clips and steps ``sam.base_optimizer`` as usual.  With gradient accumulation every micro-batch
   gets its own perturbation (m-sharpness with m = accumulation steps, paper eq. (38)).  Its logs
   carry ``sam/perturbation_norm``, the mean ``|e|`` since the last log.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import Trainer, TrainerCallback
from transformers.trainer_callback import ExportableState

from .._names import DEFAULT_MU0, DEFAULT_SCHEDULE
from ..bar import BAR
from ..sbar import SBAR
from ..metrics import balancedness
from ..pairs import FactorPair, find_lora_pairs
from ..sam import SAM

__all__ = [
    "BARCallback",
    "SAMTrainer",
    "SAMTrainingMixin",
    "add_callback_first",
    "unwrap_optimizer",
]


def _deepspeed(obj: Any) -> bool:
    return any(type(o).__module__.split(".")[0] == "deepspeed" for o in (obj,))


def unwrap_optimizer(optimizer: Any) -> torch.optim.Optimizer:
    """The torch optimizer inside accelerate's ``AcceleratedOptimizer`` wrappers.

    DeepSpeed's optimizers (ZeRO stages 1-3, reached through accelerate's
    ``DeepSpeedOptimizerWrapper``) are refused with a ``TypeError`` at attach time: they keep
    flattened fp32 partitions of the parameters and step those, so a rescaling of the module's
    LoRA factors before ``step`` would be overwritten (BAR) and a perturbation would miss the
    weights the engine steps (SAM) -- a silent no-op either way."""
    seen, chain = 0, [optimizer]
    while not type(optimizer).__module__.startswith("torch.") and hasattr(optimizer, "optimizer"):
        optimizer = optimizer.optimizer
        chain.append(optimizer)
        seen += 1
        if seen > 8:  # pragma: no cover - defensive
            break
    if any(_deepspeed(o) or type(o).__name__ == "DeepSpeedOptimizerWrapper" for o in chain):
        raise TypeError(
            f"Unsupported optimizer: DeepSpeed's {type(optimizer).__name__} steps its own flat "
            "copies of the parameters, so BAR's rescaling (and SAM's perturbation) of the LoRA "
            "factors would be a silent no-op. Train without DeepSpeed (DDP or FSDP with "
            "use_orig_params=True both work: see lorabar.distributed)"
        )
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"Invalid optimizer: {type(optimizer).__name__} is not a torch optimizer")
    return optimizer


def add_callback_first(trainer: Trainer, callback: TrainerCallback) -> TrainerCallback:
    """Make ``callback`` the first of ``trainer``'s callbacks, through the Trainer's public
    ``remove_callback``/``add_callback``, so that what it adds to the logs in ``on_log`` reaches
    every ``report_to`` integration (the Trainer calls its callbacks in order, integrations
    first).  `BARCallback`'s ``bar/*`` values need this to reach TensorBoard or W&B:

    ```
    bar = BARCallback(mode="nbar")
    trainer = Trainer(..., callbacks=[bar])
    add_callback_first(trainer, bar)
    ```
    """
    others = [c for c in trainer.callback_handler.callbacks if c is not callback]
    for other in others:
        trainer.remove_callback(other)
    if callback not in trainer.callback_handler.callbacks:
        trainer.add_callback(callback)
    for other in others:
        trainer.add_callback(other)
    return callback


class BARCallback(TrainerCallback, ExportableState):
    """Attach BAR to the Trainer's optimizer, log balancedness, and resume exactly.

    Args:
        mode: as for [`lorabar.BAR`][lorabar.bar.BAR] (``"sbar"`` builds a
            [`lorabar.SBAR`][lorabar.sbar.SBAR]).
        mu0: as for [`lorabar.BAR`][lorabar.bar.BAR].
        schedule: as for [`lorabar.BAR`][lorabar.bar.BAR] (``total_steps`` is the Trainer's
            ``max_steps``).
        rho: sBAR's radius (``mode="sbar"``), as for [`lorabar.SBAR`][lorabar.sbar.SBAR].
        norm: sBAR's ``|g|`` (``"pair"`` or ``"global"``), as for
            [`lorabar.SBAR`][lorabar.sbar.SBAR].
        pairs: explicit pairs; default [`lorabar.find_lora_pairs()`][lorabar.pairs.find_lora_pairs]
            on the Trainer's model.
        log_every: also record mean/max |B| in `history` every this many optimizer steps
            (0: never); the Trainer's own logs get them at every logging step regardless.
        resume_state: BAR's state to resume from (set by the Trainer when it rebuilds the
            callback from a checkpoint; not for users).

    Logging: the ``bar/*`` values it adds in ``on_log`` are in ``trainer.state.log_history``;
    they reach the ``report_to`` integrations (TensorBoard, W&B, ...), which the Trainer calls
    first, once `add_callback_first()` has put the callback first (the Trainer's own API:
    no other callback's order changes).

    Resume: BAR's state (its step ``t``, which drives the schedule) is saved in every checkpoint's
    ``trainer_state.json`` (``stateful_callbacks["BARCallback"]``, the Trainer's mechanism for
    callback state) and restored at ``on_train_begin`` when the Trainer resumes from a
    checkpoint, so a resumed run equals the uninterrupted one bit for bit.  (With
    ``restore_callback_states_from_checkpoint=True`` the Trainer rebuilds the callback from the
    arguments saved there; a callable ``schedule`` or explicit ``pairs`` cannot be saved, so
    pass them again by leaving that flag off, its default.)
    """

    def __init__(
        self,
        mode: str = "nbar",
        mu0: float = DEFAULT_MU0,
        schedule: str = DEFAULT_SCHEDULE,
        pairs: list[FactorPair] | None = None,
        log_every: int = 50,
        *,
        rho: float | None = None,
        norm: str = "pair",
        resume_state: dict | None = None,
    ) -> None:
        self.mode, self.mu0, self.schedule = mode, mu0, schedule
        self.rho, self.norm = rho, norm
        self.pairs = pairs
        self.log_every = log_every
        self.resume_state = resume_state
        self.bar: BAR | None = None
        self.history: list[dict] = []
        self._handle = None

    def state(self) -> dict:
        """What the Trainer saves in a checkpoint (``ExportableState``)."""
        args = {
            "mode": self.mode,
            "mu0": self.mu0,
            "log_every": self.log_every,
            "rho": self.rho,
            "norm": self.norm,
        }
        if isinstance(self.schedule, str):
            args["schedule"] = self.schedule
        return {
            "args": args,
            "attributes": {"resume_state": self.bar.state_dict() if self.bar else None},
        }

    def _saved_state(self, state) -> dict | None:
        if self.resume_state is not None:  # set by the Trainer when it rebuilt this callback
            return self.resume_state
        entry = (getattr(state, "stateful_callbacks", None) or {}).get(type(self).__name__)
        if isinstance(entry, list):
            entry = entry[0] if len(entry) == 1 else None
            if entry is None:
                raise RuntimeError(
                    "BARCallback: the checkpoint holds several BARCallback states; "
                    "resume with restore_callback_states_from_checkpoint=True"
                )
        return (entry or {}).get("attributes", {}).get("resume_state")

    def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
        if optimizer is None:
            raise RuntimeError("BARCallback: the Trainer passed no optimizer to on_train_begin")
        pairs = self.pairs if self.pairs is not None else find_lora_pairs(model)
        if self.mode == "sbar":
            self.bar = SBAR(pairs, rho=self.rho, norm=self.norm)
        else:
            if self.rho is not None or self.norm != "pair":
                raise ValueError(
                    f"BARCallback: rho and norm are sBAR's (mode='sbar'); "
                    f"mode={self.mode!r} uses mu0 and schedule"
                )
            self.bar = BAR(
                pairs,
                mode=self.mode,
                mu0=self.mu0,
                schedule=self.schedule,
                total_steps=max(1, state.max_steps),
            )
        saved = self._saved_state(state) if state.global_step > 0 else None
        if saved is not None:
            self.bar.load_state_dict(saved)
        elif state.global_step > 0:
            raise RuntimeError(
                f"BARCallback: resuming at step {state.global_step} from a checkpoint without "
                "BAR's "
                "state (saved by a lorabar before 0.2, or the callback was added on resume); "
                "its schedule would restart at t = 0"
            )
        self.resume_state = None
        self._handle = self.bar.attach(unwrap_optimizer(optimizer))

    def _stats(self) -> dict:
        assert self.bar is not None
        stats = balancedness(self.bar.pairs)
        return {
            "bar/mean_abs_B": stats.mean_abs_B.item(),
            "bar/max_abs_B": stats.max_abs_B.item(),
            "bar/step": self.bar.step,
        }

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None and self.log_every and state.global_step % self.log_every == 0:
            s = self._stats()
            self.history.append(
                {
                    "step": state.global_step,
                    "bar_step": s["bar/step"],
                    "mean_abs_B": s["bar/mean_abs_B"],
                    "max_abs_B": s["bar/max_abs_B"],
                }
            )

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is None or logs is None:
            return
        stats = self._stats()
        logs.update(stats)  # seen by the callbacks after this one: every report_to integration
        # The Trainer appended its copy of these logs to log_history before calling on_log.
        last = state.log_history[-1] if state.log_history else None
        if last is not None and last.get("step") == state.global_step:
            last.update(stats)

    def on_train_end(self, args, state, control, **kwargs):
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


class SAMTrainingMixin:
    """SAM's two forward/backward passes in a ``Trainer``'s ``training_step`` (mix it in before
    any ``Trainer`` subclass: `SAMTrainer`, ``lorabar.integrations.trl.SAMSFTTrainer``).

    Pass ``sam=lorabar.SAM(params, torch.optim.AdamW, rho=..., lr=...)``; the Trainer is given
    ``sam.base_optimizer`` to step (and any scheduler you pass with it), so SAM's param groups
    are the ones the scheduler updates.  Training metrics that the Trainer subclass accumulates
    inside ``compute_loss`` are kept from one pass only (`_sam_metrics_snapshot()`).
    """

    def __init__(self, *args: Any, sam: SAM, **kwargs: Any) -> None:
        if not isinstance(sam, SAM):
            raise TypeError(f"Invalid sam: expected lorabar.SAM, got {type(sam).__name__}")
        optimizers = kwargs.pop("optimizers", (None, None))
        if optimizers[0] is not None and optimizers[0] is not sam.base_optimizer:
            raise ValueError("Invalid optimizers: pass (sam.base_optimizer, scheduler) or omit it")
        kwargs["optimizers"] = (sam.base_optimizer, optimizers[1])
        super().__init__(*args, **kwargs)
        if getattr(self, "is_deepspeed_enabled", False):
            raise TypeError(
                "Unsupported: SAMTrainer under DeepSpeed (its optimizer steps flat "
                "copies of the parameters, so SAM's perturbation would miss them); "
                "use DDP or FSDP with use_orig_params=True"
            )
        self.sam = sam
        self._eps_sum: torch.Tensor | None = None
        self._eps_count = 0

    def _sam_metrics_snapshot(self) -> Any:
        """What the second pass must not add to (nothing for the plain Trainer)."""
        return None

    def _sam_metrics_restore(self, snapshot: Any) -> None:
        """Undo what the second pass added to the metrics (see `_sam_metrics_snapshot()`)."""

    def training_step(self, model, inputs, num_items_in_batch=None):
        params = [p for g in self.sam.param_groups for p in g["params"]]
        accumulated = [p.grad for p in params]  # earlier micro-batches of this step
        for p in params:
            p.grad = None
        # Pass 1 at w: only the direction matters (e is invariant to loss scaling).  Its loss,
        # the loss at the weights being trained, is the one logged (as lorabar.sam_step does):
        # a SAM run's loss curve compares with a plain Trainer's.
        loss = super().training_step(model, inputs, num_items_in_batch)
        self.sam.first_step(zero_grad=True)
        eps = self.sam.perturbation_norm  # a tensor: no host sync until the next log
        if eps is not None:
            self._eps_sum = eps.detach() if self._eps_sum is None else self._eps_sum + eps
            self._eps_count += 1
        # Pass 2 at w + e: this gradient is what the base optimizer steps with.
        snapshot = self._sam_metrics_snapshot()
        super().training_step(model, inputs, num_items_in_batch)
        self._sam_metrics_restore(snapshot)
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


class SAMTrainer(SAMTrainingMixin, Trainer):
    """A ``Trainer`` that performs SAM's two forward/backward passes in ``training_step``.

    Pass ``sam=lorabar.SAM(params, torch.optim.AdamW, rho=..., lr=...)``; the Trainer is given
    ``sam.base_optimizer`` to step (and any scheduler you pass with it).
    """
