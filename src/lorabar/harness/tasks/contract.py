"""The task-adapter contract: what the engine needs of a task (the adapter of a run config is
`lorabar.harness.run.task_of.make_task()`)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["TaskAdapter"]


@runtime_checkable
class TaskAdapter(Protocol):
    """What the engine needs of a task (`lorabar.harness.tasks.encoder_task.EncoderTask`,
    `lorabar.harness.tasks.lm_tasks.PromptTask`, `lorabar.harness.tasks.lm_tasks.WebNLGTask`).

    Constructed from a run config; loads its data there (no model yet), so that a bad data file
    fails before any model loads.
    """

    primary_metric: str  # the metric dev selection maximizes
    sizes: dict[str, int]  # examples per split ("train", "dev", "test")
    n_train: int  # training examples the engine draws batches from

    def build_model(self, method: Any) -> Any:
        """The model for ``method`` (a registry entry): LoRA adapters unless ``method.adapters``
        is false; tokenizes the training split once the tokenizer exists."""

    def prepare(self, model: Any, runtime: Any) -> None:
        """Run once on the device before training (the encoder fits its probe head here)."""

    def batch(self, indices: list[int]) -> dict:
        """The training batch of these example indices (CPU tensors)."""

    def loss(self, model: Any, batch: dict) -> Any:
        """The mean training loss of ``batch`` (a 0-dim tensor)."""

    def evaluate(self, model: Any, split: str, runtime: Any) -> dict:
        """``{metric: value}`` on ``split`` ("dev" or "test")."""

    def majority(self) -> dict | None:
        """The majority-class reference per split (``None`` where it means nothing)."""

    def train_info(self) -> dict:
        """What the adapter adds to the record's ``train``."""
