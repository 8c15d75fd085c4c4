"""TRL integration: SAM for ``trl.SFTTrainer``.

``SAMSFTTrainer(model=..., args=SFTConfig(...), train_dataset=..., sam=lorabar.SAM(...))`` is
``SFTTrainer`` with SAM's two passes per step
([`lorabar.integrations.hf.SAMTrainingMixin`][lorabar.integrations.hf.SAMTrainingMixin]).
``SFTTrainer`` accumulates its training metrics inside ``compute_loss`` (``num_tokens``,
``entropy``, ``mean_token_accuracy``); SAM runs the loss twice per step, so the second pass's
additions are undone: tokens are counted once, the metrics are those of the first pass (at the
weights, not at the perturbed point).  BAR needs nothing TRL-specific:
``SFTTrainer(..., callbacks=[BARCallback(...)])``.
"""

from __future__ import annotations

import copy
from typing import Any

from trl import SFTTrainer

from .hf import SAMTrainingMixin

__all__ = ["SAMSFTTrainer"]


class SAMSFTTrainer(SAMTrainingMixin, SFTTrainer):
    """``trl.SFTTrainer`` with SAM (see the module docstring)."""

    def _sam_metrics_snapshot(self) -> Any:
        metrics = getattr(self, "_metrics", None)
        return (
            getattr(self, "_total_train_tokens", None),
            copy.deepcopy(dict(metrics["train"])) if metrics is not None else None,
        )

    def _sam_metrics_restore(self, snapshot: Any) -> None:
        tokens, train = snapshot
        if tokens is not None:
            self._total_train_tokens = tokens
        if train is not None:
            self._metrics["train"].clear()
            self._metrics["train"].update(train)
