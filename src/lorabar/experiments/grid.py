"""Grids of runs: expand a TOML config, run what is missing, resume after interruption.

Config (TOML)::

    [base]                 # config fields shared by every run (EncoderConfig; kind = "lm": LMConfig)
    steps = 300
    precision = "auto"     # (bf16 = true, the older spelling, means precision = "bf16")
    [grid]                 # lists are crossed with each other and with every variant
    task = ["sst2", "rte"]
    seed = [13, 21, 42]
    [[variant]]            # one table per method setting; lists are expanded too
    method = "lora"
    [[variant]]
    method = "nbar"
    mu0 = [1.0, 10.0]

Each run's result is ``OUT/runs/<task>_<method>_s<seed>_<hash>.json``, written atomically when the
run finishes; a rerun skips runs whose file exists, so an interrupted grid loses at most the runs
in flight.  The hash covers every setting that identifies a run (``RunConfig.key``).  Runs go
through the engine (:func:`lorabar.experiments.engine.run`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import tomllib
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from .config import CONFIGS, RunConfig, config_from
from .engine import run_to_file
from .results import write_json_atomic


def load_grid(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Grid config {str(path)!r} does not exist")
    try:
        with path.open("rb") as f:
            grid = tomllib.load(f)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"Invalid grid {str(path)!r}: TOML syntax error: {err}") from None
    if "grid" not in grid and "variant" not in grid:
        raise ValueError(f"Invalid grid {str(path)!r}: no [grid] table and no [[variant]] "
                         "table, so nothing to run (an empty or comment-only file?)")
    return grid


def _product(table: dict) -> list[dict]:
    keys = list(table)
    values = [v if isinstance(v, list) else [v] for v in table.values()]
    return [dict(zip(keys, combo)) for combo in itertools.product(*values)]


def expand(grid: dict, *, data_dir: str | None = None) -> list[RunConfig]:
    """All :class:`RunConfig` s of a grid, in a deterministic order, duplicates removed."""
    unknown = set(grid) - {"base", "grid", "variant"}
    if unknown:
        raise ValueError(f"Invalid grid: unknown sections {sorted(unknown)} (expected base, grid, variant)")
    base = dict(grid.get("base", {}))
    kind = base.pop("kind", "encoder")
    if kind not in CONFIGS:
        raise ValueError(f"Invalid kind: {kind!r} (expected one of {sorted(CONFIGS)})")
    names = set(CONFIGS[kind].field_names()) | {"bf16"}
    variants = grid.get("variant", [{}])
    configs, seen = [], set()
    for common in _product(grid.get("grid", {})):
        for variant in variants:
            for v in _product(variant):
                settings = {**base, **common, **v}
                bad = set(settings) - names
                if bad:
                    raise ValueError(f"Invalid grid: unknown settings {sorted(bad)}")
                if data_dir is not None:
                    settings["data_dir"] = data_dir
                cfg = config_from(settings, kind)
                ident = run_id(cfg)
                if ident not in seen:
                    seen.add(ident)
                    configs.append(cfg)
    return configs


def run_id(cfg: RunConfig) -> str:
    digest = hashlib.sha1(json.dumps(cfg.key(), sort_keys=True).encode()).hexdigest()[:10]
    return f"{cfg.task}_{cfg.method}_s{cfg.seed}_{digest}"


def result_path(out: Path, cfg: RunConfig) -> Path:
    return out / "runs" / f"{run_id(cfg)}.json"


def is_done(path: Path) -> bool:
    try:
        return "metrics" in json.loads(path.read_text())
    except (OSError, ValueError):
        return False


def _run_one(cfg: RunConfig, path: str) -> str:
    return run_to_file(cfg, path)


def run_grid(grid: dict, out: str | os.PathLike, *, jobs: int = 1, data_dir: str | None = None,
             threads: int = 0, only: dict[str, str] | None = None, runner=_run_one,
             log=print) -> dict:
    """Run every missing configuration; returns counts ``{"total", "skipped", "done", "failed"}``.

    ``threads``: torch threads per run (0: the CPU count split evenly over ``jobs``).
    ``only``: run just the configurations whose settings match, e.g. ``{"method": "zeroshot"}``
    (values compared as strings).
    """
    out = Path(out)
    configs = expand(grid, data_dir=data_dir)
    if not configs:
        raise ValueError("Invalid grid: it expands to no runs (an empty [[variant]] list?)")
    for key, want in (only or {}).items():
        if not hasattr(configs[0], key):
            raise ValueError(f"Invalid filter: {key!r} is not a setting of these runs")
        configs = [c for c in configs if str(getattr(c, key)) == want]
        if not configs:
            raise ValueError(f"Invalid filter: no run of this grid has {key}={want!r}")
    todo = [c for c in configs if not is_done(result_path(out, c))]
    log(f"grid: {len(configs)} runs, {len(configs) - len(todo)} already done, {len(todo)} to run "
        f"({jobs} job{'s' if jobs > 1 else ''})")
    counts = {"total": len(configs), "skipped": len(configs) - len(todo), "done": 0, "failed": 0}
    threads = threads or max(1, (os.cpu_count() or 1) // jobs)
    todo = [dataclasses.replace(c, threads=c.threads or threads) for c in todo]

    def finished(cfg: RunConfig, error: BaseException | None) -> None:
        path = result_path(out, cfg)
        if error is None:
            counts["done"] += 1
            path.with_suffix(".error.json").unlink(missing_ok=True)
            log(f"[{counts['done'] + counts['failed']}/{len(todo)}] done {path.name}")
        else:
            counts["failed"] += 1
            write_json_atomic(path.with_suffix(".error.json"), {
                "config": dataclasses.asdict(cfg), "error": repr(error),
                "traceback": "".join(traceback.format_exception(error))})
            log(f"[{counts['done'] + counts['failed']}/{len(todo)}] FAILED {path.name}: {error!r}")

    if jobs <= 1:
        for cfg in todo:
            try:
                runner(cfg, str(result_path(out, cfg)))
                finished(cfg, None)
            except Exception as err:  # noqa: BLE001 - one failed run must not stop the grid
                finished(cfg, err)
    else:
        import multiprocessing

        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(runner, c, str(result_path(out, c))): c for c in todo}
            for fut in as_completed(futures):
                finished(futures[fut], fut.exception())
    return counts
