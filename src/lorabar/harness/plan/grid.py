"""Grids of runs: expand a TOML config into run configs, and tell which runs are done.

Config (TOML):

```
[base]                 # config fields every run shares (EncoderConfig; kind = "lm": LMConfig)
steps = 300
precision = "auto"
[grid]                 # lists are crossed with each other and with every variant
task = ["sst2", "rte"]
seed = [13, 21, 42]
[[variant]]            # one table per method setting; lists are expanded too
method = "lora"
[[variant]]
method = "nbar"
mu0 = [1.0, 10.0]
```

Each run's result is ``OUT/runs/<task>_<method>_s<seed>_<hash>.json``, written atomically when the
run finishes; a rerun skips runs whose file holds a finished result of the same identity, so an
interrupted grid loses at most the runs in flight.  The hash covers the run's identity
([`lorabar.harness.run.identity`][lorabar.harness.run.identity]: the config fields that change the
result, the resolved
device kind and precision, the content of the data and model files), and a file is trusted only
if the identity recorded inside it equals the run's.  Running what is missing is the execute
stage's ([`run_grid()`][lorabar.harness.execute.grid_runner.run_grid]).
"""

from __future__ import annotations

import itertools
import json
import os
import tomllib
from pathlib import Path

from ..run.config import CONFIGS, RunConfig, config_from
from ..run.identity import run_id as identity_run_id
from ..run.identity import run_identity
from ..run.records import digest_ok


def load_grid(path: str | os.PathLike) -> dict:
    from ..._io import existing

    path = existing(path, "grid config", "file", "a grid TOML")
    try:
        with path.open("rb") as f:
            grid = tomllib.load(f)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"Invalid grid {str(path)!r}: TOML syntax error: {err}") from None
    if "grid" not in grid and "variant" not in grid:
        raise ValueError(
            f"Invalid grid {str(path)!r}: no [grid] table and no [[variant]] "
            "table, so nothing to run (an empty or comment-only file?)"
        )
    check_grid(grid, str(path))
    return grid


def check_grid(grid: dict, source: str = "grid") -> None:
    """Refuse, naming the TOML key, what a grid cannot mean: an unknown section or setting, a
    section of the wrong shape, an empty list (it would expand to no runs)."""
    unknown = set(grid) - {"base", "grid", "variant"}
    if unknown:
        raise ValueError(
            f"Invalid grid {source!r}: unknown sections {sorted(unknown)} "
            "(expected [base], [grid] and [[variant]])"
        )
    base, table = grid.get("base", {}), grid.get("grid", {})
    variants = grid.get("variant", [{}])
    if not isinstance(base, dict) or not isinstance(table, dict) or not isinstance(variants, list):
        raise ValueError(
            f"Invalid grid {source!r}: [base] and [grid] are tables, [[variant]] an array of tables"
        )
    kind = base.get("kind", "encoder")
    if kind not in CONFIGS:
        raise ValueError(
            f"Invalid grid {source!r}: base.kind = {kind!r} (expected one of {sorted(CONFIGS)})"
        )
    names = set(CONFIGS[kind].field_names()) | {"kind"}
    sections = [("base", base), ("grid", table)] + [
        (f"variant[{i}]", v) for i, v in enumerate(variants)
    ]
    for where, section in sections:
        if not isinstance(section, dict):
            raise ValueError(f"Invalid grid {source!r}: {where} is not a table")
        for key, value in section.items():
            if key not in names and key != "bf16":  # bf16: config_from says what replaced it
                raise ValueError(
                    f"Invalid grid {source!r}: {where}.{key} is not a setting "
                    f"(a typo? settings: {sorted(names - {'kind'})})"
                )
            if isinstance(value, list) and not value:
                raise ValueError(
                    f"Invalid grid {source!r}: {where}.{key} is an empty list (it "
                    "would expand to no runs)"
                )
    for i, v in enumerate(variants):  # a variant adds settings; it does not replace the method
        if "method" in base and "method" in v and v["method"] != base["method"]:
            raise ValueError(
                f"Invalid grid {source!r}: variant[{i}].method = {v['method']!r} "
                f"replaces base.method = {base['method']!r}; name the method in "
                "each [[variant]] (or in [base] alone)"
            )


def _product(table: dict) -> list[dict]:
    keys = list(table)
    values = [v if isinstance(v, list) else [v] for v in table.values()]
    return [dict(zip(keys, combo)) for combo in itertools.product(*values)]


def expand(grid: dict, *, data_dir: str | None = None) -> list[RunConfig]:
    """All `RunConfig` s of a grid, in a deterministic order, duplicates removed."""
    unknown = set(grid) - {"base", "grid", "variant"}
    if unknown:
        raise ValueError(
            f"Invalid grid: unknown sections {sorted(unknown)} (expected base, grid, variant)"
        )
    base = dict(grid.get("base", {}))
    kind = base.pop("kind", "encoder")
    if kind not in CONFIGS:
        raise ValueError(f"Invalid kind: {kind!r} (expected one of {sorted(CONFIGS)})")
    names = set(CONFIGS[kind].field_names())
    variants = grid.get("variant", [{}])
    configs, seen = [], set()
    for common in _product(grid.get("grid", {})):
        for variant in variants:
            for v in _product(variant):
                settings = {**base, **common, **v}
                bad = set(settings) - names
                if "bf16" in bad:
                    config_from(settings, kind)  # says what replaced it
                if bad:
                    raise ValueError(f"Invalid grid: unknown settings {sorted(bad)}")
                if data_dir is not None:
                    settings["data_dir"] = data_dir
                cfg = config_from(settings, kind)
                ident = json.dumps(
                    [cfg.key(), cfg.device, cfg.precision, cfg.data_dir], sort_keys=True
                )
                if ident not in seen:
                    seen.add(ident)
                    configs.append(cfg)
    return configs


def plan_configs(
    grid: dict, *, data_dir: str | None = None, only: dict[str, str] | None = None
) -> list[RunConfig]:
    """The runs of ``grid`` (`expand()`) that match ``only`` (``{setting: value}``: a number
    compared by value, ``lr=1e-3`` matching 0.001; anything else as text); refuses a grid or
    filter that leaves none."""
    configs = expand(grid, data_dir=data_dir)
    if not configs:
        raise ValueError("Invalid grid: it expands to no runs (an empty [[variant]] list?)")
    for key, want in (only or {}).items():
        if not hasattr(configs[0], key):
            raise ValueError(f"Invalid filter: {key!r} is not a setting of these runs")
        configs = [c for c in configs if _matches(getattr(c, key), want)]
        if not configs:
            raise ValueError(f"Invalid filter: no run of this grid has {key}={want!r}")
    return configs


def _matches(value, want: str) -> bool:
    """Whether a setting's ``value`` is ``want`` as given on the command line."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return float(want) == float(value)
        except ValueError:
            return False
    return str(value) == want


def _resolved(cfg: RunConfig) -> tuple[str, str]:
    """The device kind and precision ``cfg`` resolves to on this machine."""
    from ..run.runtime import resolve_device, resolve_precision

    device = resolve_device(cfg.device)
    return device.type, resolve_precision(cfg.precision, device)


def identity_of(cfg: RunConfig) -> dict:
    """The run's identity on this machine
    ([`lorabar.harness.run.identity.run_identity()`][lorabar.harness.run.identity.run_identity]);
    ``cfg.threads = 0`` means torch's current thread count, as in the engine."""
    import torch

    device, precision = _resolved(cfg)
    return run_identity(
        cfg, device=device, precision=precision, threads=cfg.threads or torch.get_num_threads()
    )


def run_id_of(cfg: RunConfig) -> str:
    """The result file's stem: ``<task>_<method>_s<seed>_<hash of the identity>``."""
    return identity_run_id(identity_of(cfg))


def result_path(out: Path, cfg: RunConfig) -> Path:
    return Path(out) / "runs" / f"{run_id_of(cfg)}.json"


def read_result(path: Path) -> dict | None:
    """The JSON object in ``path``, or ``None`` (missing, unreadable, not an object)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_done(path: Path, identity: dict | None = None) -> bool:
    """Whether ``path`` holds a finished, unaltered result -- of ``identity`` when given."""
    data = read_result(Path(path))
    if data is None or "metrics" not in data or not digest_ok(data):
        return False  # unfinished, or altered by hand (its digest does not match)
    return identity is None or data.get("identity") == identity


def done_here(out: Path, identity: dict, reused: dict[str, Path] | None = None) -> bool:
    """Whether the run of ``identity`` is finished for the output folder ``out``: its own
    ``OUT/runs/<run id>.json`` or a run file the folder's manifest reuses
    ([`reused_files()`][lorabar.harness.plan.manifest.reused_files])."""
    from .manifest import reused_files

    name = f"{identity_run_id(identity)}.json"
    if is_done(Path(out) / "runs" / name, identity):
        return True
    reused = reused_files(out) if reused is None else reused
    return name in reused and is_done(reused[name], identity)


def finished_in(folders, identity: dict) -> Path | None:
    """The first of ``folders`` (``--reuse``) holding a finished result of ``identity``: its
    file, or ``None``."""
    name = f"{identity_run_id(identity)}.json"
    return next(
        (Path(d) / "runs" / name for d in folders if is_done(Path(d) / "runs" / name, identity)),
        None,
    )
