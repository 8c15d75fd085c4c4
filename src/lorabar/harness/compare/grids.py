"""The grids of a comparison's stages: tuning (`tuning_grid()`), the seed stage at the
dev-chosen settings (`seeds_grid()`, `source_grid()`), and the check of a plan against the runs
already finished in its folder (`check_with_finished()`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..run.registry import METHODS
from ..run.result import RunRecord
from .config import HINT, CompareConfig

__all__ = ["check_with_finished", "planned_tasks", "seeds_grid", "source_grid", "tuning_grid"]


def _check_seeds(grid: dict, cc: CompareConfig) -> None:
    """The seeds of a comparison come from ``--seeds`` alone: a TOML may repeat the tuning seed
    in [base] or [grid] (as a ``lorabar grid`` file does), nothing else."""
    for i, v in enumerate(grid.get("variant", [])):
        if "seed" in v:
            raise ValueError(
                f"Invalid grid {cc.grid!r}: variant[{i}].seed = {v['seed']!r}; the "
                "seeds of a comparison come from --seeds alone (remove the key)"
            )
    for where in ("base", "grid"):
        value = grid.get(where, {}).get("seed")
        if value is not None and (value if isinstance(value, list) else [value]) != [cc.seeds[0]]:
            raise ValueError(
                f"Invalid grid {cc.grid!r}: {where}.seed = {value!r}, but the "
                f"tuning seed is the first of --seeds ({cc.seeds[0]}); the seeds of "
                "a comparison come from --seeds alone (remove the key)"
            )


def tuning_grid(cc: CompareConfig) -> dict:
    """Stage 1 as a grid dict: the TOML's (its seeds replaced by the tuning seed, restricted to
    ``methods``), else the registry's default grid per method (with the baseline's lr values
    under the ``own-lr`` protocol), with ``base`` on top."""
    from ..plan.grid import load_grid

    if cc.grid:
        grid = load_grid(cc.grid)
        _check_seeds(grid, cc)
        base = {**grid.get("base", {}), **cc.base}
        table = {**grid.get("grid", {}), "seed": [cc.seeds[0]]}
        if cc.tasks:  # a subset of the TOML's tasks (cheap ones first, say)
            listed = table.get("task", base.get("task"))
            listed = listed if isinstance(listed, list) else [listed]
            unknown = [t for t in cc.tasks if t not in listed]
            if unknown:
                raise ValueError(
                    f"Invalid --tasks: {unknown} are not tasks of {cc.grid} ({listed})"
                )
            table["task"] = [t for t in listed if t in cc.tasks]
        variants = []
        for v in grid.get("variant", [{}]):
            methods = v.get("method", base.get("method"))
            names = methods if isinstance(methods, list) else [methods]
            keep = [m for m in names if m in cc.methods]
            if keep:
                variants.append({**v, "method": keep if isinstance(methods, list) else keep[0]})
        return {"base": base, "grid": table, "variant": variants}
    from ..plan.protocol import baseline_lrs, registry_variants

    lr = baseline_lrs(cc) if cc.protocol == "own-lr" else None
    return {
        "base": dict(cc.base),
        "grid": {"seed": [cc.seeds[0]]},
        "variant": registry_variants(cc, cc.methods, lr=lr),
    }


def seeds_grid(cc: CompareConfig, results: list[RunRecord]) -> dict:
    """Stage 2 as a grid dict: per (task, method) the dev-chosen setting on every seed."""
    from ..report import select

    variants = []
    mine = planned_tasks(cc)
    for (task, unit), runs in sorted(select(results).items()):
        method = unit.method
        if method not in cc.methods or task not in mine:
            continue  # another comparison's runs in the same folder (other data, other tasks)
        c = {**runs[0]["config"], "task": runs[0].recorded_task}
        entry = METHODS[method]
        # what selection may vary per method: lr, its own settings, and weight decay (a recipe
        # may set it per method, as the paper's App. D.4 does for BAR)
        keys = ["lr", *entry.reads(c), "weight_decay"] if entry.trains else []
        variants.append(
            {
                "task": c["task"],
                "method": method,
                "seed": list(cc.seeds) if entry.trains else [cc.seeds[0]],
                **{k: c[k] for k in keys if k in c},
            }
        )
    base = tuning_grid(cc)["base"]
    return {"base": base, "variant": variants}


def source_grid(cc: CompareConfig) -> dict:
    """``--settings-from DIR``: the seed stage's grid of DIR's dev-chosen settings, with this
    comparison's settings on top (``--label-noise 0.3``, say)."""
    from ..report import load_results

    grid = seeds_grid(cc, load_results(cc.settings_from, hint=HINT))
    if not grid["variant"]:  # before anything is written: the seed stage would run nothing
        raise ValueError(
            f"Invalid --settings-from: {cc.settings_from!r} holds no dev-chosen "
            f"setting for this comparison's tasks {sorted(planned_tasks(cc))} and "
            f"methods {list(cc.methods)}; give the folder of a comparison of them"
        )
    return grid


def check_with_finished(out: Path, configs: list) -> None:
    """Refuse, before anything runs, a plan whose runs cannot be compared with the finished
    runs already in ``out`` (another model, other steps ...): one line naming both."""
    from ..plan.grid import identity_of
    from ..run.identity import own_task_name
    from ..report import check_comparable, load, result_files

    if not result_files(out):
        return
    finished = load(out, skip_bad=True)[0]
    planned = []
    for c in configs:
        ident = identity_of(c)
        task = own_task_name(dataclasses.asdict(c), ident["data"]) if c.task == "custom" else c.task
        planned.append(
            RunRecord.of(
                {"identity": ident, "config": {"task": task, "method": c.method}},
                f"the planned run {task}/{c.method}/seed {c.seed}",
            )
        )
    check_comparable(finished + planned, hint=HINT)


def planned_tasks(cc: CompareConfig) -> set[str]:
    """The task names (as reports name them) this comparison's stage 1 runs."""
    from ..plan.grid import expand
    from ..run.identity import own_task_name, role_identity

    names = set()
    for c in expand(tuning_grid(cc)):
        names.add(
            own_task_name(dataclasses.asdict(c), role_identity(c)) if c.task == "custom" else c.task
        )
    return names
