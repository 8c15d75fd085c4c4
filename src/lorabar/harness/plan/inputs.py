"""The plan stage shared by the commands that train: what a run reads, with the flag that names
it, for the output guard ([`lorabar.guard`][lorabar.guard]) to check the outputs against before
anything
runs."""

from __future__ import annotations

from pathlib import Path

from ...guard import Input

__all__ = ["plan_inputs", "run_inputs"]


def run_inputs(cfg) -> list:
    """The inputs of a run, with the flags that name them: the data files it reads (your own
    by role, a staged task's split files), a model folder, an adapter to start from."""
    from ..run.identity import data_files

    if cfg.task == "custom":
        inputs = [Input(f"--{role}", getattr(cfg, role)) for role in ("train", "dev", "test")]
    else:
        inputs = [Input(f"--data-dir ({cfg.task})", p) for p in data_files(cfg)]
    if Path(cfg.model).expanduser().is_dir():
        inputs.append(Input("--model", cfg.model))
    if getattr(cfg, "init_adapter", None):
        inputs.append(Input("--init-adapter", cfg.init_adapter))
    return inputs


def plan_inputs(configs) -> list:
    """The inputs of every run of a plan, each once."""
    seen: dict = {}
    for c in configs:
        for i in run_inputs(c):
            seen.setdefault((i.flag, str(i.path)), i)
    return list(seen.values())
