"""``compare --save-adapters DIR``: keep each method's adapter at its dev-chosen setting.

A comparison's runs write result files, not adapters (hundreds of tuning runs would otherwise
each leave one).  Once the dev choice stands, each chosen setting's run -- the tuning seed's, or
every seed's with ``every_seed`` -- is run again through the same engine with ``--save-adapter``
(`lorabar.harness.run.engine.run`), its identity checked against the recorded run's before it
trains (same data, model, device, precision, threads), and its metrics against the recorded
ones afterwards: a run is deterministic there, so a difference is said, never hidden.  Each
adapter is ``DIR/<task>_<method>_<setting>_s<seed>``, and the ``lorabar finetune`` command that
reproduces it (`command_for()`) goes into the report.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from pathlib import Path

from .run.result import RunRecord

__all__ = ["adapter_name", "command_for", "keep_adapters"]


def command_for(cfg, save_adapter: str | None = None) -> str:
    """The ``lorabar finetune`` (``finetune-lm``) command that runs ``cfg``: every field that
    differs from the config's default, as the flag ``add_config_args`` gives it."""
    from .run.config import LMConfig

    words = ["lorabar", "finetune-lm" if isinstance(cfg, LMConfig) else "finetune"]
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if value == f.default or value is None:
            continue
        flag = "--" + f.name.replace("_", "-")
        words += [flag] if value is True else [flag, str(value)]
    if save_adapter is not None:
        words += ["--save-adapter", str(save_adapter)]
    return " ".join(shlex.quote(w) for w in words)


def adapter_name(record: dict) -> str:
    """``<task>_<method>_<setting>_s<seed>``: the tuned settings that were chosen (lr and the
    method's own), in a file name's characters."""
    from .run.registry import METHODS

    c = record["config"]
    setting = "_".join(
        f"{k}={c[k]}" for k in ("lr", *METHODS[c["method"]].hparams) if c.get(k) is not None
    )
    name = f"{c['task']}_{c['method']}_{setting}_s{c['seed']}"
    return re.sub(r"[^A-Za-z0-9._=+-]", "-", name)


def _chosen_runs(records: list[RunRecord], every_seed: bool) -> list[RunRecord]:
    from .report.selection import select, selection_seeds

    seeds = selection_seeds(records)
    out = []
    for (task, method), runs in sorted(select(records).items()):
        tuning = {r["config"]["seed"] for r in runs} & set(
            next((s for (t, u), s in seeds.items() if t == task and u == method), set())
        )
        keep = (
            runs
            if every_seed
            else [r for r in runs if r["config"]["seed"] in tuning][:1]
            or sorted(runs, key=lambda r: r["config"]["seed"])[:1]
        )
        out += sorted(keep, key=lambda r: r["config"]["seed"])
    return out


def keep_adapters(
    records: list[RunRecord],
    folder: str | Path,
    *,
    every_seed: bool = False,
    kind: str = "encoder",
    log=print,
) -> list[str]:
    """Run each chosen setting again with ``--save-adapter`` into ``folder``; returns the
    report's lines (one per adapter, with its command)."""
    from .run.config import config_from
    from .run.engine import run
    from .run.registry import METHODS

    folder = Path(folder)
    lines = []
    for record in _chosen_runs(records, every_seed):
        method = METHODS[record["config"]["method"]]
        if method.adapter == "none" or not method.trains:
            lines.append(
                f"- {record['config']['task']} / {record['config']['method']}: trains "
                "no adapter; nothing kept"
            )
            continue
        cfg = config_from(dict(record.data["config"]), kind)  # the run's config, as it recorded

        target = folder / adapter_name(record)
        log(f"compare: keeping {target.name}")
        again = run(cfg, progress=False, expect=record["identity"], save_adapter=str(target))
        metric = record["primary_metric"]
        recorded, now = (r["metrics"]["test"][metric] for r in (record, again))
        note = (
            ""
            if now == recorded
            else f" (its test {metric} now {now}, recorded {recorded}: not bit-identical here)"
        )
        lines.append(f"- `{target.name}`{note}: `{command_for(cfg, target)}`")
    return lines
