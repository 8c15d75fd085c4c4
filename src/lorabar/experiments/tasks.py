"""The task adapter of a run config (the engine's ``make_task``)."""

from __future__ import annotations

__all__ = ["make_task"]


def make_task(cfg):
    """The task adapter for ``cfg`` (loads its data; no model yet)."""
    if cfg.kind == "encoder":
        from .encoder import EncoderTask

        return EncoderTask(cfg)
    from .lm import PromptTask, WebNLGTask

    return WebNLGTask(cfg) if cfg.task == "webnlg" else PromptTask(cfg)
