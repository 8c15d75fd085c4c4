"""Grids of runs: expand a TOML config, run what is missing, resume after interruption.

Config (TOML)::

    [base]                 # config fields shared by every run (EncoderConfig; kind = "lm": LMConfig)
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

Each run's result is ``OUT/runs/<task>_<method>_s<seed>_<hash>.json``, written atomically when the
run finishes; a rerun skips runs whose file holds a finished result of the same identity, so an
interrupted grid loses at most the runs in flight.  The hash covers the run's identity
(:mod:`lorabar.experiments.identity`: the config fields that change the result, the resolved
device kind and precision, the content of the data and model files), and a file is trusted only
if the identity recorded inside it equals the run's.  Runs go through the engine
(:func:`lorabar.experiments.engine.run`).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import tomllib
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from .config import CONFIGS, RunConfig, config_from
from .engine import run_to_file
from .identity import run_id as identity_run_id
from .identity import run_identity
from .results import digest_ok, write_json_atomic


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
    check_grid(grid, str(path))
    return grid


def check_grid(grid: dict, source: str = "grid") -> None:
    """Refuse, naming the TOML key, what a grid cannot mean: an unknown section or setting, a
    section of the wrong shape, an empty list (it would expand to no runs)."""
    unknown = set(grid) - {"base", "grid", "variant"}
    if unknown:
        raise ValueError(f"Invalid grid {source!r}: unknown sections {sorted(unknown)} "
                         "(expected [base], [grid] and [[variant]])")
    base, table = grid.get("base", {}), grid.get("grid", {})
    variants = grid.get("variant", [{}])
    if not isinstance(base, dict) or not isinstance(table, dict) or not isinstance(variants, list):
        raise ValueError(f"Invalid grid {source!r}: [base] and [grid] are tables, [[variant]] "
                         "an array of tables")
    kind = base.get("kind", "encoder")
    if kind not in CONFIGS:
        raise ValueError(f"Invalid grid {source!r}: base.kind = {kind!r} (expected one of "
                         f"{sorted(CONFIGS)})")
    names = set(CONFIGS[kind].field_names()) | {"kind"}
    sections = [("base", base), ("grid", table)] + [(f"variant[{i}]", v)
                                                    for i, v in enumerate(variants)]
    for where, section in sections:
        if not isinstance(section, dict):
            raise ValueError(f"Invalid grid {source!r}: {where} is not a table")
        for key, value in section.items():
            if key not in names and key != "bf16":  # bf16: config_from says what replaced it
                raise ValueError(f"Invalid grid {source!r}: {where}.{key} is not a setting "
                                 f"(a typo? settings: {sorted(names - {'kind'})})")
            if isinstance(value, list) and not value:
                raise ValueError(f"Invalid grid {source!r}: {where}.{key} is an empty list (it "
                                 "would expand to no runs)")


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
                ident = json.dumps([cfg.key(), cfg.device, cfg.precision, cfg.data_dir],
                                   sort_keys=True)
                if ident not in seen:
                    seen.add(ident)
                    configs.append(cfg)
    return configs


def plan_configs(grid: dict, *, data_dir: str | None = None,
                 only: dict[str, str] | None = None) -> list[RunConfig]:
    """The runs of ``grid`` (:func:`expand`) that match ``only`` (``{setting: value}``, values
    compared as strings); refuses a grid or filter that leaves none."""
    configs = expand(grid, data_dir=data_dir)
    if not configs:
        raise ValueError("Invalid grid: it expands to no runs (an empty [[variant]] list?)")
    for key, want in (only or {}).items():
        if not hasattr(configs[0], key):
            raise ValueError(f"Invalid filter: {key!r} is not a setting of these runs")
        configs = [c for c in configs if str(getattr(c, key)) == want]
        if not configs:
            raise ValueError(f"Invalid filter: no run of this grid has {key}={want!r}")
    return configs


def _resolved(cfg: RunConfig) -> tuple[str, str]:
    """The device kind and precision ``cfg`` resolves to on this machine."""
    from .runtime import resolve_device, resolve_precision

    device = resolve_device(cfg.device)
    return device.type, resolve_precision(cfg.precision, device)


def identity_of(cfg: RunConfig) -> dict:
    """The run's identity on this machine (:func:`lorabar.experiments.identity.run_identity`);
    ``cfg.threads = 0`` means torch's current thread count, as in the engine."""
    import torch

    device, precision = _resolved(cfg)
    return run_identity(cfg, device=device, precision=precision,
                        threads=cfg.threads or torch.get_num_threads())


def run_id(cfg: RunConfig) -> str:
    """The result file's stem: ``<task>_<method>_s<seed>_<hash of the identity>``."""
    return identity_run_id(identity_of(cfg))


def result_path(out: Path, cfg: RunConfig) -> Path:
    return Path(out) / "runs" / f"{run_id(cfg)}.json"


def _read(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@dataclasses.dataclass(frozen=True)
class GridEvent:
    """One thing a grid reports, typed: ``kind`` is ``"plan"`` (what runs, what is done),
    ``"done"`` or ``"failed"`` (a run ended; ``path`` its result file), ``"moved"`` (a file set
    aside), ``"warning"`` (an error file not written) or ``"stopping"`` (a full disk ended the
    grid); ``message`` is the line ``lorabar grid`` prints for it."""

    kind: str
    message: str
    path: Path | None = None


def is_done(path: Path, identity: dict | None = None) -> bool:
    """Whether ``path`` holds a finished, unaltered result -- of ``identity`` when given."""
    data = _read(Path(path))
    if data is None or "metrics" not in data or not digest_ok(data):
        return False  # unfinished, or altered by hand (its digest does not match)
    return identity is None or data.get("identity") == identity


def _set_aside(path: Path, out: Path, emit) -> None:
    """Move a result file whose content is not the run its name says into ``OUT/aside``."""
    aside = out / "aside"
    aside.mkdir(exist_ok=True)
    target = aside / path.name
    n = 1
    while target.exists():
        target = aside / f"{path.stem}.{n}{path.suffix}"
        n += 1
    os.replace(path, target)
    data = _read(target)
    what = "unreadable or unfinished"
    if data is not None and isinstance(data.get("config"), dict):
        c = data["config"]
        what = (f"holds {c.get('task')}/{c.get('method')}/seed {c.get('seed')} with another "
                "identity" if "identity" in data else "has no recorded identity")
    emit(GridEvent("moved", f"grid: moved {path} aside to {target}: its content is not this "
                   f"run ({what})", path))


class GridLock:
    """An exclusive lock on a grid's output folder (``OUT/.lorabar-grid.lock``, holding the pid):
    a second grid on the same folder fails at once, naming the holder."""

    def __init__(self, out: Path) -> None:
        self.path = Path(out) / ".lorabar-grid.lock"
        self.file = None

    def __enter__(self) -> GridLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = open(self.path, "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            f.close()
            raise ValueError(f"Invalid --out: {str(self.path.parent)!r} is in use by another "
                             f"lorabar grid (pid {holder}); wait for it to finish or stop it") from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        self.file = f
        return self

    def __exit__(self, *exc) -> None:
        if self.file is not None:
            self.file.close()  # releases the lock; the file stays (removing it would race)


def _die_with_parent(parent: int) -> None:
    """Worker initializer: the worker is killed when the grid process dies (SIGKILL included;
    Linux's parent-death signal), and exits at once if the grid is already gone."""
    import signal

    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: run_to_file's parent check still applies
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the grid's to handle
    if os.getppid() != parent:
        os._exit(1)


def _run_one(cfg: RunConfig, path: str, expect: dict | None = None,
             parent: int | None = None) -> str:
    return run_to_file(cfg, path, expect=expect, parent=parent)


def _disk_full(error: BaseException | None) -> bool:
    import errno

    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)


def run_grid(grid: dict, out: str | os.PathLike, *, jobs: int = 1, data_dir: str | None = None,
             threads: int = 0, only: dict[str, str] | None = None, runner=_run_one,
             log=print, events=None) -> dict:
    """Run every missing configuration; returns counts ``{"total", "skipped", "done", "failed"}``
    (and ``"stopped": reason`` when a full disk ended the grid early).

    A run is done when ``OUT/runs/<run id>.json`` holds a finished result whose recorded identity
    equals the run's identity on this machine; a file there with any other content is moved to
    ``OUT/aside/`` (one line says so) and the run is redone.  The grid holds a lock on ``OUT``
    (a second grid there fails at once); its workers die with it.
    ``threads``: torch threads per run (0: the CPU count split evenly over ``jobs``).
    ``only``: run just the configurations whose settings match, e.g. ``{"method": "zeroshot"}``
    (values compared as strings).  ``log`` gets each :class:`GridEvent`'s line, ``events`` (when
    given) the event itself.
    """
    out = Path(out)
    configs = plan_configs(grid, data_dir=data_dir, only=only)
    if jobs < 1:
        raise ValueError(f"Invalid --jobs: {jobs} (expected a positive integer)")
    threads = threads or max(1, (os.cpu_count() or 1) // jobs)
    configs = [dataclasses.replace(c, threads=c.threads or threads) for c in configs]
    planned = [(cfg, identity_of(cfg)) for cfg in configs]  # the plan: a bad input stops here
    def emit(event: GridEvent) -> None:
        log(event.message)
        if events is not None:
            events(event)

    with GridLock(out):
        return _run_locked(planned, out, jobs=jobs, runner=runner, emit=emit)


def _run_locked(planned: list[tuple[RunConfig, dict]], out: Path, *, jobs: int, runner,
                emit) -> dict:
    counts = {"total": len(planned), "skipped": 0, "done": 0, "failed": 0}
    todo = []
    (out / "runs").mkdir(parents=True, exist_ok=True)
    for cfg, identity in planned:
        path = out / "runs" / f"{identity_run_id(identity)}.json"
        if is_done(path, identity):
            counts["skipped"] += 1
            continue
        if path.exists():
            _set_aside(path, out, emit)
        todo.append((cfg, identity, path))
    n = len(todo)
    emit(GridEvent("plan", f"grid: {len(planned)} runs, {counts['skipped']} already done, {n} "
                           f"to run ({jobs} job{'s' if jobs > 1 else ''})"))

    def finished(cfg: RunConfig, path: Path, error: BaseException | None) -> None:
        _finished(counts, n, cfg, path, error, emit)

    parent = os.getpid()
    if jobs <= 1:
        for cfg, identity, path in todo:
            if "stopped" in counts:
                break
            try:
                runner(cfg, str(path), identity, None)  # in this process: no parent check
                finished(cfg, path, None)
            except Exception as err:  # noqa: BLE001 - one failed run must not stop the grid
                finished(cfg, path, err)
        return counts
    import multiprocessing

    # workers killed with the grid leave the pool's semaphores to multiprocessing's resource
    # tracker, which would print a UserWarning after the grid's own one-line message
    quiet = "ignore:resource_tracker:UserWarning"
    if quiet not in os.environ.get("PYTHONWARNINGS", ""):
        os.environ["PYTHONWARNINGS"] = ",".join(
            filter(None, (os.environ.get("PYTHONWARNINGS"), quiet)))
    pool = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_die_with_parent, initargs=(parent,))
    try:
        futures = {pool.submit(runner, c, str(p), i, parent): (c, p) for c, i, p in todo}
        for fut in as_completed(futures):
            cfg, path = futures[fut]
            if fut.cancelled():
                continue
            finished(cfg, path, fut.exception())
            if "stopped" in counts:
                for other in futures:
                    other.cancel()
    except BaseException:
        _kill_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return counts


def _finished(counts: dict, n: int, cfg: RunConfig, path: Path, error: BaseException | None,
              emit) -> None:
    """Count a run that ended; a failed one leaves ``<run id>.error.json`` beside it, and a full
    disk stops the grid (``counts["stopped"]``)."""
    if error is None:
        counts["done"] += 1
        path.with_suffix(".error.json").unlink(missing_ok=True)
        emit(GridEvent("done", f"[{counts['done'] + counts['failed']}/{n}] done {path.name}",
                       path))
        return
    counts["failed"] += 1
    emit(GridEvent("failed", f"[{counts['done'] + counts['failed']}/{n}] FAILED {path.name}: "
                             f"{error}", path))
    try:
        write_json_atomic(path.with_suffix(".error.json"), {
            "config": dataclasses.asdict(cfg), "error": repr(error),
            "traceback": "".join(traceback.format_exception(error))})
    except OSError as err:
        emit(GridEvent("warning", f"grid: could not write "
                                  f"{path.with_suffix('.error.json').name} ({err.strerror})"))
    if _disk_full(error) and "stopped" not in counts:
        counts["stopped"] = f"disk full ({error.strerror}); finished runs are kept"
        emit(GridEvent("stopping", f"grid: stopping: the disk is full ({error}); free space and "
                                   "rerun to resume"))


def _kill_workers(pool: ProcessPoolExecutor) -> None:
    """Stop a pool's workers now (Ctrl-C, SIGTERM): no run finishes after the grid stopped."""
    for proc in list(getattr(pool, "_processes", {}).values()):
        try:
            proc.kill()
        except (OSError, ValueError):
            pass
