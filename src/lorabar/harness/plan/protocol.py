"""How ``lorabar compare`` tunes: the protocols, as a list of stages (each a grid built from the
runs finished so far).

``own-lr`` (the default, and the paper's): every method tunes its own learning rate jointly with
its own settings.  With the registry's grids every method that trains is tuned over the
baseline's learning rates (``Method.tune["lr"]`` of the baseline, e.g. LoRA's {1e-3, 3e-3}); a
TOML grid lists each method's values itself:

```
stage "tuning": every method x its lr values x its own settings, seed 1
stage "seeds":  every method's dev-chosen setting on every seed
```

``baseline-lr`` (cheaper, never the default): the baseline's learning rate is tuned first, then
every other method tunes only its own settings at the baseline's dev-chosen lr (per task):

```
stage "baseline lr":  the baseline x its lr values, seed 1
stage "tuning":       every other method x its own settings at that lr, seed 1
stage "seeds":        every method's dev-chosen setting on every seed
```

A comparison records its protocol in ``OUT/.lorabar-compare.json``; ``lorabar report`` shows it
in the first lines of ``report.md``, and a second comparison into the same ``--out`` with another
protocol is refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from ..run.registry import METHODS

__all__ = [
    "PROTOCOLS",
    "RECORD",
    "baseline_lrs",
    "check_record",
    "describe",
    "read_record",
    "registry_variants",
    "stages",
    "tuned_lrs",
    "write_record",
]

PROTOCOLS = {
    "own-lr": "every method tunes its own learning rate jointly with its own settings on dev "
    "(the paper's protocol)",
    "baseline-lr": "the baseline's learning rate is tuned on dev first; every other method "
    "tunes its own settings at the baseline's dev-chosen learning rate",
    "settings-from": "nothing is tuned here: every method runs, on every seed, the setting "
    "chosen on dev in another comparison's runs (--settings-from; e.g. the "
    "clean data's choice under label noise)",
}
RECORD = ".lorabar-compare.json"


def baseline_lrs(cc) -> list[float]:
    """The learning rates the baseline is tuned over (its registry grid), or the fixed one."""
    from ..run.config import CONFIGS

    if "lr" in cc.base:
        return [cc.base["lr"]]
    values = METHODS[cc.baseline].tune.get("lr")
    if values is None:
        return [CONFIGS[cc.kind].lr]
    return list(values) if isinstance(values, list) else [values]


def registry_variants(cc, methods, *, lr: list[float] | None = None) -> list[dict]:
    """One variant per method from the registry's grids, without the settings fixed in
    ``cc.base``; a method that trains and has no lr grid of its own gets ``lr`` (when given)."""
    variants = []
    for m in methods:
        tune = {k: v for k, v in METHODS[m].tune.items() if k not in cc.base}
        if lr is not None and METHODS[m].trains and "lr" not in tune and "lr" not in cc.base:
            tune["lr"] = list(lr)
        variants.append({"method": m, **tune})
    return variants


def _chosen_lrs(cc, chosen: dict) -> dict[str, float]:
    """``{task: the baseline's dev-chosen lr}`` from a dev selection."""
    return {
        task: runs[0]["config"]["lr"]
        for (task, unit), runs in chosen.items()
        if unit.method == cc.baseline
    }


def _at_chosen_lr(grid: dict, chosen: dict[str, float], baseline: str) -> dict:
    """``grid`` without the baseline, per task at the baseline's chosen lr (task names as the
    report gives them; own-data tasks map back to ``custom``)."""
    variants = []
    for task, lr in sorted(chosen.items()):
        for v in grid.get("variant", []):
            methods = v["method"] if isinstance(v["method"], list) else [v["method"]]
            keep = [m for m in methods if m != baseline and METHODS[m].trains]
            if keep:
                variants.append({**v, "method": keep, "lr": lr, "task": task})
    base = {k: v for k, v in grid.get("base", {}).items() if k != "lr"}
    table = {k: v for k, v in grid.get("grid", {}).items() if k not in ("task", "lr")}
    return {"base": base, "grid": table, "variant": variants}


def _only(grid: dict, method: str) -> dict:
    variants = []
    for v in grid.get("variant", []):
        methods = v["method"] if isinstance(v["method"], list) else [v["method"]]
        if method in methods:
            variants.append({**v, "method": method})
    return {**grid, "variant": variants}


def stages(
    cc,
    tuning_grid: Callable,
    seeds_grid: Callable,
    select: Callable,
    widen_round: Callable | None = None,
) -> list[tuple[str, Callable[[Callable[[], list[dict]]], dict]]]:
    """``[(stage name, make)]``: ``make(load)`` builds the stage's grid, ``load()`` giving the
    runs finished so far (as `lorabar.harness.report.load_results()`); ``select`` is
    the dev selection (`lorabar.harness.report.select()`); ``widen_round(load)``: a round
    of ``--widen-edges`` (``cc.widen_edges`` of them between tuning and the seed stage)."""
    seeds = ("seeds", lambda load: seeds_grid(cc, load()))
    widen = [(f"widen {k + 1}", widen_round) for k in range(cc.widen_edges)]
    if cc.protocol == "own-lr":
        return [("tuning", lambda load: tuning_grid(cc)), *widen, seeds]

    def at_lr(load):
        results = load()
        chosen = _chosen_lrs(cc, select(results))
        named = {r["config"]["task"]: r.recorded_task for r in results}
        grid = _at_chosen_lr(tuning_grid(cc), chosen, cc.baseline)
        for v in grid["variant"]:
            v["task"] = named.get(v["task"], v["task"])
        return grid

    return [
        ("baseline lr", lambda load: _only(tuning_grid(cc), cc.baseline)),
        ("tuning", at_lr),
        *widen,
        seeds,
    ]


def tuned_lrs(configs) -> dict[str, list[float]]:
    """``{method: the learning rates its tuning runs use}`` (methods that train)."""
    lrs: dict[str, set] = {}
    for c in configs:
        if METHODS[c.method].trains:
            lrs.setdefault(c.method, set()).add(c.lr)
    return {m: sorted(v) for m, v in lrs.items()}


def describe(protocol: str, baseline: str, lrs: dict[str, list[float]] | None = None) -> str:
    """One line for the plan and the report: the protocol, and with ``lrs`` the learning rates
    each method is tuned over -- saying so when a method is tuned over fewer than the baseline
    (a TOML grid's choice, not the paper's protocol)."""
    line = f"Protocol {protocol!r} (baseline {baseline}): {PROTOCOLS[protocol]}."
    if not lrs:
        return line
    shown = "; ".join(f"{m} {{{', '.join(f'{v:g}' for v in vs)}}}" for m, vs in lrs.items())
    fewer = [m for m, vs in lrs.items() if len(vs) < len(lrs.get(baseline, []))]
    line += f" Learning rates {'used' if protocol == 'settings-from' else 'tuned'}: {shown}."
    if protocol == "own-lr" and fewer:
        line += (
            " Not every method is tuned over the baseline's learning rates "
            f"({', '.join(fewer)}"
            " at fewer: the grid's choice, not the paper's protocol)."
        )
    return line


def read_record(folder: str | Path) -> dict | None:
    try:
        data = json.loads((Path(folder) / RECORD).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("protocol") in PROTOCOLS else None


def check_record(cc) -> None:
    """Refuse a comparison into an ``--out`` that holds one run with another protocol or
    baseline (its runs would be selected together)."""
    had = read_record(cc.out)
    if had and (had["protocol"], had.get("baseline")) != (cc.protocol, cc.baseline):
        raise ValueError(
            f"Invalid --out: {cc.out!r} holds a comparison with protocol "
            f"{had['protocol']!r} and baseline {had.get('baseline')!r}; give "
            "another --out for this one"
        )


def write_record(cc, lrs: dict[str, list[float]]) -> None:
    from ...guard import Output, write_json

    record = {
        "generator": "lorabar compare",
        "protocol": cc.protocol,
        "baseline": cc.baseline,
        "seeds": list(cc.seeds),
        "grid": cc.grid,
        "lrs": lrs,
    }
    if getattr(cc, "settings_from", None):
        record["settings_from"] = cc.settings_from
    write_json(Output("--out", Path(cc.out) / RECORD, "compare"), record)
