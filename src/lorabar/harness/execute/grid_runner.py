"""Run a grid: plan its runs, skip the finished ones, hand the rest to an executor.

`run_grid()` expands the grid (`lorabar.harness.plan.grid`), computes every run's
identity before anything runs (a bad input stops here), takes a lock on ``OUT``, moves aside a
result file whose content is not its run, and gives the runs still to do to an executor
(`lorabar.harness.execute`: this machine, Ray or SLURM), reporting each one that ends as a
typed `GridEvent`.  An interrupted grid loses at most the runs in flight.
"""

from __future__ import annotations

import dataclasses
import os
import traceback
from pathlib import Path

from ..plan.grid import done_here, finished_in, identity_of, plan_configs, read_result
from ..plan.manifest import add_reuses, record_command, reused_files
from ..run.config import RunConfig
from ..run.identity import run_id as identity_run_id
from ...guard import Output, OutputError, is_kind, write_json
from .base import RunJob
from .choice import ExecutorConfig, threads_per_run

__all__ = ["GridEvent", "GridLock", "failed_runs", "run_grid", "set_aside"]


@dataclasses.dataclass(frozen=True)
class GridEvent:
    """One thing a grid reports, typed: ``kind`` is ``"plan"`` (what runs, what is done),
    ``"done"`` or ``"failed"`` (a run ended; ``path`` its result file), ``"moved"`` (a file set
    aside), ``"warning"`` (an error file not written) or ``"stopping"`` (a full disk ended the
    grid); ``message`` is the line ``lorabar grid`` prints for it."""

    kind: str
    message: str
    path: Path | None = None


def set_aside(path: Path, out: Path, emit) -> None:
    """Move a result file whose content is not the run its name says into ``OUT/aside``."""
    aside = out / "aside"
    aside.mkdir(exist_ok=True)
    target = aside / path.name
    n = 1
    while target.exists():
        target = aside / f"{path.stem}.{n}{path.suffix}"
        n += 1
    os.replace(path, target)
    data = read_result(target)
    what = "unreadable or unfinished"
    if data is not None and isinstance(data.get("config"), dict):
        c = data["config"]
        what = (
            f"holds {c.get('task')}/{c.get('method')}/seed {c.get('seed')} with another identity"
            if "identity" in data
            else "has no recorded identity"
        )
    emit(
        GridEvent(
            "moved",
            f"grid: moved {path} aside to {target}: its content is not this run ({what})",
            path,
        )
    )


class GridLock:
    """An exclusive lock on a grid's output folder (``OUT/.lorabar-grid.lock``, holding the pid):
    a second grid on the same folder fails at once, naming the holder.  The file is removed when
    the grid ends (a grid killed with SIGKILL leaves it; the next one takes it over)."""

    def __init__(self, out: Path) -> None:
        self.path = Path(out) / ".lorabar-grid.lock"
        self.file = None

    def __enter__(self) -> GridLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            f = open(self.path, "a+")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                f.seek(0)
                holder = f.read().strip() or "unknown"
                f.close()
                raise ValueError(
                    f"Invalid --out: {str(self.path.parent)!r} is in use by another "
                    f"lorabar grid (pid {holder}); wait for it to finish or stop "
                    "it"
                ) from None
            if self._still_there(f):
                break
            f.close()  # its holder removed it between our open and our lock: lock the new one
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        self.file = f
        return self

    def _still_there(self, f) -> bool:
        try:
            return os.fstat(f.fileno()).st_ino == os.stat(self.path).st_ino
        except FileNotFoundError:
            return False

    def __exit__(self, *exc) -> None:
        if self.file is not None:
            # removed while still held: a grid that opened it meanwhile sees it gone and retries
            self.path.unlink(missing_ok=True)
            self.file.close()


def disk_full(error: BaseException | None) -> bool:
    import errno

    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)


def run_grid(
    grid: dict,
    out: str | os.PathLike,
    *,
    jobs: int = 1,
    data_dir: str | None = None,
    threads: int = 0,
    only: dict[str, str] | None = None,
    executor=None,
    runner=None,
    reuse: tuple[str, ...] = (),
    manifest: dict | None = None,
    log=print,
    events=None,
) -> dict:
    """Run every missing configuration; returns counts ``{"total", "skipped", "done", "failed"}``
    (and ``"stopped": reason`` when a full disk ended the grid early).

    A run is done when ``OUT/runs/<run id>.json`` holds a finished result whose recorded identity
    equals the run's identity on this machine; a file there with any other content is moved to
    ``OUT/aside/`` (one line says so) and the run is redone.  The grid holds a lock on ``OUT``
    (a second grid there fails at once).  ``executor``: where the runs run, an
    [`ExecutorConfig`][lorabar.harness.execute.choice.ExecutorConfig] or a built executor (default:
    this
    machine, ``jobs`` processes, each run by ``runner``).
    ``threads``: torch threads per run (0: the CPU count split evenly over ``jobs``).
    ``reuse``: folders whose finished runs of the same identity count as done here: recorded in
    ``OUT/manifest.json`` as references
    ([`lorabar.harness.plan.manifest`][lorabar.harness.plan.manifest]), not copied.
    ``manifest``: ``record_command``'s arguments (the command line, its grid): recorded in
    ``OUT/manifest.json`` once the plan stands, before any run.
    ``only``: run just the configurations whose settings match, e.g. ``{"method": "zeroshot"}``
    (values compared as strings).  ``log`` gets each `GridEvent`'s line, ``events`` (when
    given) the event itself.
    """
    out = Path(out)
    configs = plan_configs(grid, data_dir=data_dir, only=only)
    choice = executor if isinstance(executor, ExecutorConfig) else ExecutorConfig(jobs=jobs)
    threads = threads_per_run(threads, choice.jobs)
    if not hasattr(executor, "run"):
        executor = choice.build(out, threads, runner)
    configs = [dataclasses.replace(c, threads=c.threads or threads) for c in configs]
    planned = [(cfg, identity_of(cfg)) for cfg in configs]  # the plan: a bad input stops here

    def emit(event: GridEvent) -> None:
        log(event.message)
        if events is not None:
            events(event)

    with GridLock(out):
        if manifest is not None:
            record_command(out, **manifest)
        return _run_locked(
            planned, out, executor=executor, emit=emit, reuse=tuple(Path(d) for d in reuse)
        )


def _run_locked(
    planned: list[tuple[RunConfig, dict]],
    out: Path,
    *,
    executor,
    emit,
    reuse: tuple[Path, ...] = (),
) -> dict:
    counts = {"total": len(planned), "skipped": 0, "done": 0, "failed": 0}
    todo, reused = [], []
    (out / "runs").mkdir(parents=True, exist_ok=True)
    own_reuses = reused_files(out)
    for cfg, identity in planned:
        path = out / "runs" / f"{identity_run_id(identity)}.json"
        if done_here(out, identity, own_reuses):
            counts["skipped"] += 1
            continue
        found = finished_in(reuse, identity)
        if found is not None and not path.exists():
            reused.append(found)
            counts["skipped"] += 1
            continue
        if path.exists():
            set_aside(path, out, emit)
        todo.append(RunJob(cfg, identity, path))
    if reused:
        add_reuses(out, reused)
    n = len(todo)
    emit(
        GridEvent(
            "plan",
            f"grid: {len(planned)} runs, {counts['skipped']} already done"
            + (f" ({len(reused)} reused from {', '.join(map(str, reuse))})" if reused else "")
            + f", {n} to run ({executor.describe()})",
        )
    )

    def finished(job: RunJob, error: BaseException | None) -> bool:
        _finished(counts, n, job.cfg, job.path, error, emit)
        return "stopped" in counts

    executor.run(todo, finished)
    return counts


def _finished(
    counts: dict, n: int, cfg: RunConfig, path: Path, error: BaseException | None, emit
) -> None:
    """Count a run that ended; a failed one leaves ``<run id>.error.json`` beside it, and a full
    disk stops the grid (``counts["stopped"]``)."""
    if error is None:
        counts["done"] += 1
        if is_kind(path.with_suffix(".error.json"), "error"):  # an earlier failure's, not a user's
            path.with_suffix(".error.json").unlink()
        emit(GridEvent("done", f"[{counts['done'] + counts['failed']}/{n}] done {path.name}", path))
        return
    counts["failed"] += 1
    emit(
        GridEvent(
            "failed", f"[{counts['done'] + counts['failed']}/{n}] FAILED {path.name}: {error}", path
        )
    )
    try:
        write_json(
            Output("--out", path.with_suffix(".error.json"), "error"),
            {
                "config": dataclasses.asdict(cfg),
                "error": repr(error),
                "traceback": "".join(traceback.format_exception(error)),
            },
        )
    except (OSError, OutputError) as err:
        emit(
            GridEvent(
                "warning",
                f"grid: could not write {path.with_suffix('.error.json').name}"
                f" ({getattr(err, 'strerror', None) or err})",
            )
        )
    if disk_full(error) and "stopped" not in counts:
        counts["stopped"] = f"disk full ({error.strerror}); finished runs are kept"
        emit(
            GridEvent(
                "stopping",
                f"grid: stopping: the disk is full ({error}); free space and rerun to resume",
            )
        )


def failed_runs(command: str, n: int, out, stage: str | None = None) -> str:
    """The one wording of failed runs, for ``grid`` and ``compare`` (a ``RuntimeError``: exit 1)."""
    where = f" in stage {stage!r}" if stage else ""
    return (
        f"{command}: {n} runs failed{where} (their errors: {out}/runs/*.error.json); fix "
        "and rerun to resume"
    )
